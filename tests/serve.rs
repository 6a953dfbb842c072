//! `arq serve` with real clients: tokio-postgres (simple and extended protocol, binary
//! results) and psql. Each test starts its own server on a free loopback port and stops
//! it with SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::util::{EACH_CUSTOMER, arq, csv_rows, demo, run_ok, run_with_stdin};

/// The README's aging query.
const AGING: &str = "SELECT aging_bucket(due_date, snapshot_date) AS bucket, currency, \
                     sum(open_amount) AS open FROM open_items_latest GROUP BY bucket, currency \
                     ORDER BY currency, aging_bucket_rank(bucket)";

/// A statement that runs for hours, in small batches (an interrupt is seen between
/// batches).
const SLOW: &str = "SELECT count(*) FROM generate_series(1, 1000000000000) AS t(x) \
                    WHERE x % 7 = 8";

/// A statement whose join emits tens of billions of rows from two scans of the demo: it reads
/// its input once and then computes for minutes without reading again.
const CROSS: &str = "SELECT a.customer_id, count(*) FROM open_items a CROSS JOIN open_items b \
                     GROUP BY 1 ORDER BY 2 DESC LIMIT 3";

const PASSWORD: &str = "c0rrect horse";

/// A running `arq serve`.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `arq serve --listen 127.0.0.1:0 ARGS` and waits for its `listening` line.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        match Server::try_start(args, env) {
            Ok(server) => server,
            Err(log) => panic!("arq serve did not start:\n{log}"),
        }
    }

    /// Like [`Server::start`]; Err(its stderr) when it exits instead.
    fn try_start(args: &[&str], env: &[(&str, &str)]) -> Result<Server, String> {
        let mut cmd = arq();
        cmd.env_remove("ARQ_SERVE_USER")
            .env_remove("ARQ_SERVE_PASSWORD")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("arq serve runs");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["event"] == "listening"
                {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_string());
                }
                lines.lock().unwrap().push(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(addr) => Ok(Server {
                child,
                addr: addr.parse().expect("an address"),
                log,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                Err(log.lock().unwrap().join("\n"))
            }
        }
    }

    fn conn(&self, user: &str, password: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user='{user}' password='{password}' dbname=arq \
             connect_timeout=10",
            self.addr.port()
        )
    }

    /// The log lines of `event`, parsed.
    fn events(&self, event: &str) -> Vec<serde_json::Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == event)
            .collect()
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGTERM, then waits (at most 20 s) for the exit.
    fn stop(&mut self) -> ExitStatus {
        terminate(&self.child);
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "arq serve did not stop on SIGTERM:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn terminate(child: &Child) {
    // SAFETY: kill(2) on the child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
}

/// A users file with `ana` (password [`PASSWORD`]), written by `arq serve --add-user`.
fn users_file(dir: &Path) -> PathBuf {
    let path = dir.join("users.toml");
    let out = run_with_stdin(
        &[
            "serve",
            "--users",
            path.to_str().unwrap(),
            "--add-user",
            "ana",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

async fn connect(conn: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conn, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The rows of a simple query, as text (NULL: None).
async fn simple_rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The server's message of an error (the client's own text when there is none).
fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string())
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

/// Whether a value printed by `arq sql --format csv` and one sent as Postgres text are the
/// same value: equal text, or equal floats, or the same boolean / timestamp in the other
/// spelling.
fn same_value(csv: &str, pg: Option<&str>) -> bool {
    let Some(pg) = pg else {
        return csv.is_empty();
    };
    if csv == pg {
        return true;
    }
    match (csv, pg) {
        ("true", "t") | ("false", "f") => return true,
        _ => {}
    }
    if csv.replace('T', " ") == pg {
        return true;
    }
    match (csv.parse::<f64>(), pg.parse::<f64>()) {
        (Ok(a), Ok(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        _ => false,
    }
}

fn assert_same_rows(sql: &str, csv: &[Vec<String>], pg: &[Vec<Option<String>>]) {
    assert_eq!(csv.len(), pg.len(), "{sql}: row counts differ");
    for (i, (a, b)) in csv.iter().zip(pg).enumerate() {
        assert_eq!(a.len(), b.len(), "{sql}: row {i} widths differ");
        for (x, y) in a.iter().zip(b) {
            assert!(
                same_value(x, y.as_deref()),
                "{sql}: row {i}: arq sql {x:?}, server {y:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_warehouse_in_a_bucket_is_served() {
    let s3 = crate::s3::S3::start();
    s3.with_demo("arq-served");
    let mut server = Server::start(
        &["-w", "s3://arq-served/wh", "--trust-local"],
        &s3.settings(),
    );
    let client = connect(&server.conn("ana", "")).await.expect("connect");
    assert_same_rows(
        AGING,
        &arq_sql_rows(AGING),
        &simple_rows(&client, AGING).await,
    );
    drop(client);
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_plans_its_queries_on_a_cluster() {
    let cluster = crate::cluster::Cluster::start(2, &[]);
    let mut server = Server::start(&["--trust-local", "--cluster", &cluster.url], &[]);
    let client = connect(&server.conn("ana", "")).await.expect("connect");
    for sql in [
        AGING,
        "SELECT period_end, currency, dso FROM ar_metrics('2026-07-31', '2026-10-31') \
         ORDER BY 1, 2",
    ] {
        assert_same_rows(sql, &arq_sql_rows(sql), &simple_rows(&client, sql).await);
    }
    // What BI tools ask first runs on the server itself.
    let version = simple_rows(&client, "SELECT version()").await;
    assert!(
        version[0][0].as_deref().is_some_and(|v| v.contains("arq")),
        "{version:?}"
    );
    let tables = simple_rows(
        &client,
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'open_items'",
    )
    .await;
    assert_eq!(tables[0][0].as_deref(), Some("1"));
    drop(client);
    assert!(server.stop().success());
}

/// The rows of `arq sql --format csv SQL` (without the header).
fn arq_sql_rows(sql: &str) -> Vec<Vec<String>> {
    csv_rows(&run_ok(&["sql", "--format", "csv", sql]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_every_function_and_money_to_the_cent() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&users).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(
        text.contains("[users.ana]") && !text.contains(PASSWORD),
        "{text}"
    );

    let mut server = Server::start(
        &["--users", users.to_str().unwrap()],
        &[
            ("ARQ_SERVE_USER", "bob"),
            ("ARQ_SERVE_PASSWORD", "b0b-pass"),
        ],
    );

    // Wrong password, unknown user: the same refusal.
    for (user, password) in [("ana", "wrong-horse"), ("mallory", PASSWORD)] {
        let e = connect(&server.conn(user, password))
            .await
            .map(|_| ())
            .expect_err("refused");
        assert_eq!(sqlstate(&e), "28P01", "{user}: {e}");
    }
    let client = connect(&server.conn("ana", PASSWORD))
        .await
        .expect("ana logs in");
    let bob = connect(&server.conn("bob", "b0b-pass"))
        .await
        .expect("bob logs in");
    assert_eq!(
        simple_rows(&bob, "SELECT 1 AS one").await,
        vec![vec![Some("1".into())]]
    );

    // The model's scalar functions take its features in order.
    let features = "segment, overdue_share, max_dpd, worst_bucket, share_61_90, weighted_dpd, \
                    max_dpd_3m, max_dpd_6m, max_dpd_12m, paid_late_6m, paid_late_share_6m, \
                    paid_late_12m, paid_late_share_12m, avg_days_late_6m, days_late_trend, \
                    utilization, broken_promises_12m, open_disputes, tenure_months, \
                    invoices_12m, open_items, contacts_3m, days_since_last_payment";
    let model_scalars = format!(
        "SELECT customer_id, risk_score({features}) AS pd, risk_points({features}) AS points, \
         array_length(risk_reasons({features})) AS reasons, scorecard_points(0.02) AS at_2pct \
         FROM customer_features('2026-10-31') ORDER BY customer_id LIMIT 20"
    );
    // Every kind of arq function, and the views, through the simple protocol: the same
    // rows as `arq sql`.
    let queries = [
        AGING,
        "SELECT aging_bucket(due_date, snapshot_date, '15,45') AS bucket, count(*) AS n \
         FROM open_items_latest GROUP BY 1 ORDER BY aging_bucket_rank(bucket, '15,45')",
        "SELECT c.customer_id, c.name, c.collector_id, o.currency, sum(o.open_amount) AS over_90 \
         FROM open_items_latest o JOIN customers_latest c USING (customer_id) \
         WHERE days_past_due(o.due_date, o.snapshot_date) > 90 \
         GROUP BY 1, 2, 3, 4 ORDER BY over_90 DESC, 1 LIMIT 10",
        "SELECT currency, weighted_dpd(open_amount, days_past_due(due_date, snapshot_date)) AS wdpd \
         FROM open_items_latest GROUP BY 1 ORDER BY 1",
        "SELECT * FROM ar_metrics('2026-01-31', '2026-10-31') ORDER BY 1, 2, 3",
        "SELECT * FROM roll_rates('2026-06-30', '2026-10-31') ORDER BY 1, 2, 3, 4",
        "SELECT * FROM promise_kept_rate('2026-01-31', '2026-10-31') ORDER BY 1, 2, 3",
        "SELECT customer_id, pd, score, reason_1 FROM risk_scores() ORDER BY pd DESC, customer_id LIMIT 10",
        "SELECT count(*) AS n FROM customers_previous",
        &model_scalars,
    ];
    for sql in queries {
        let expected = arq_sql_rows(sql);
        assert!(!expected.is_empty(), "{sql}: no rows to compare");
        assert_same_rows(sql, &expected, &simple_rows(&client, sql).await);
        // The extended protocol (binary results): the same number of rows.
        let rows = client
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("extended {sql}: {e}"));
        assert_eq!(rows.len(), expected.len(), "extended {sql}");
    }

    // Money: a decimal total through the binary protocol equals arq sql's to the cent.
    let totals = "SELECT currency, sum(open_amount) AS open FROM open_items_latest \
                  GROUP BY 1 ORDER BY 1";
    let expected = arq_sql_rows(totals);
    let rows = client.query(totals, &[]).await.expect("totals");
    assert_eq!(rows.len(), expected.len());
    for (row, want) in rows.iter().zip(&expected) {
        let currency: String = row.get(0);
        let open: Decimal = row.get(1);
        assert_eq!(currency, want[0]);
        assert_eq!(open, want[1].parse::<Decimal>().unwrap(), "{currency}");
        assert_eq!(open.to_string(), want[1], "{currency}: the scale is kept");
    }

    // Prepared statements with date, text, numeric and integer parameters.
    let day = NaiveDate::from_ymd_opt(2026, 9, 30).unwrap();
    let statement = client
        .prepare(
            "SELECT count(*) AS n, sum(open_amount) AS open FROM open_items \
             WHERE snapshot_date = $1 AND currency = $2 AND open_amount > $3 \
             AND days_past_due(due_date, snapshot_date) > $4",
        )
        .await
        .expect("prepare");
    let literal = "SELECT count(*) AS n, sum(open_amount) AS open FROM open_items \
                   WHERE snapshot_date = DATE '2026-09-30' AND currency = 'EUR' \
                   AND open_amount > 1000.00 AND days_past_due(due_date, snapshot_date) > 30";
    let want = &arq_sql_rows(literal)[0];
    for _ in 0..2 {
        let row = client
            .query_one(
                &statement,
                &[&day, &"EUR", &Decimal::new(100000, 2), &30i32],
            )
            .await
            .expect("execute");
        let n: i64 = row.get(0);
        let open: Decimal = row.get(1);
        assert_eq!(n.to_string(), want[0]);
        assert_eq!(open.to_string(), want[1]);
    }

    // The log: a line per connection and statement, failed logins without the password.
    drop(client);
    drop(bob);
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    let log = server.log_text();
    assert!(
        !log.contains("wrong-horse") && !log.contains(PASSWORD),
        "{log}"
    );
    let failed = server.events("auth_failed");
    assert_eq!(failed.len(), 2, "{log}");
    assert_eq!(failed[0]["user"], "ana");
    assert_eq!(failed[0]["sqlstate"], "28P01");
    let connects = server.events("connect");
    assert!(connects.iter().any(|c| c["user"] == "ana"), "{log}");
    assert!(connects.iter().any(|c| c["user"] == "bob"), "{log}");
    let statements = server.events("statement");
    let aging = statements
        .iter()
        .find(|s| {
            s["sql"]
                .as_str()
                .is_some_and(|q| q.contains("aging_bucket_rank(bucket)"))
        })
        .expect("the aging statement is logged");
    assert_eq!(aging["user"], "ana");
    assert!(aging["rows"].as_u64().unwrap() > 0, "{aging}");
    assert!(aging["duration_ms"].as_f64().is_some(), "{aging}");
    assert!(!server.events("disconnect").is_empty(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_files_and_roles_are_refused_and_the_server_goes_on() {
    let mut server = Server::start(&["--trust-local"], &[]);
    let client = connect(&server.conn("ana", "")).await.expect("trusted");
    let refused = [
        ("INSERT INTO collectors VALUES ('x')", "25006"),
        ("UPDATE customers SET name = 'x'", "25006"),
        ("DELETE FROM invoices", "25006"),
        ("CREATE TABLE t AS SELECT 1", "25006"),
        ("CREATE VIEW v AS SELECT * FROM invoices", "25006"),
        ("DROP TABLE invoices", "25006"),
        ("DROP VIEW open_items_latest", "25006"),
        ("COPY collectors FROM STDIN", "25006"),
        ("COPY (SELECT 1) TO '/tmp/arq-serve-copy.csv'", "42501"),
        (
            "CREATE EXTERNAL TABLE pw (line VARCHAR) STORED AS CSV LOCATION '/etc/passwd'",
            "42501",
        ),
        ("SELECT * FROM '/etc/passwd'", "42501"),
        ("SELECT * FROM 'file:///etc/passwd'", "42501"),
        ("SELECT * FROM read_csv('/etc/passwd')", "42501"),
        (
            "SELECT * FROM read_parquet('data/demo/collectors/part-0.parquet')",
            "42501",
        ),
        ("SET datafusion.runtime.memory_limit = '100G'", "42501"),
        ("SET ROLE postgres", "42501"),
    ];
    for (sql, code) in refused {
        let e = client
            .simple_query(sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("{sql} ran"));
        assert_eq!(sqlstate(&e), code, "simple {sql}: {e}");
        let e = client
            .query(sql, &[])
            .await
            .err()
            .unwrap_or_else(|| panic!("{sql} ran"));
        assert_eq!(sqlstate(&e), code, "extended {sql}: {e}");
    }
    assert!(!Path::new("/tmp/arq-serve-copy.csv").exists());
    // Allowed besides queries: transactions, cursors, session settings.
    let fetched = simple_rows(
        &client,
        "BEGIN; DECLARE c CURSOR FOR SELECT customer_id FROM customers_latest ORDER BY 1; \
         FETCH 3 FROM c; FETCH 2 FROM c; CLOSE c; COMMIT",
    )
    .await;
    let first_five: Vec<Vec<Option<String>>> =
        arq_sql_rows("SELECT customer_id FROM customers_latest ORDER BY 1 LIMIT 5")
            .into_iter()
            .map(|r| r.into_iter().map(Some).collect())
            .collect();
    assert_eq!(fetched, first_five);
    for sql in [
        "SET extra_float_digits = 3",
        "SET application_name = 'arq tests'",
        "SET datafusion.execution.batch_size = 1024",
    ] {
        client
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }
    // Still serving, on the same connection.
    assert_eq!(
        simple_rows(&client, "SELECT count(*) FROM collectors").await,
        arq_sql_rows("SELECT count(*) FROM collectors")
            .into_iter()
            .map(|r| r.into_iter().map(Some).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_limit_timeout_and_cancel_end_a_statement_not_the_server() {
    let mut server = Server::start(
        &[
            "--trust-local",
            "--query-memory",
            "8MB",
            "--statement-timeout",
            "20s",
            "--max-statement-timeout",
            "30s",
        ],
        &[],
    );
    let client = connect(&server.conn("ana", "")).await.expect("trusted");

    // Over the memory limit: 53200, and the next statement runs.
    let e = client
        .simple_query(
            "SELECT a.invoice_id, b.invoice_id FROM open_items a JOIN open_items b \
             ON a.customer_id = b.customer_id ORDER BY 1, 2",
        )
        .await
        .map(|_| ())
        .expect_err("over the limit");
    assert_eq!(sqlstate(&e), "53200", "{e}");
    assert_eq!(simple_rows(&client, "SELECT 1").await.len(), 1);

    // statement_timeout: settable within the server's maximum.
    let rows = simple_rows(&client, "SHOW statement_timeout").await;
    assert_eq!(
        rows[0].last().unwrap().as_deref(),
        Some("20000ms"),
        "{rows:?}"
    );
    let e = client
        .simple_query("SET statement_timeout = '1h'")
        .await
        .map(|_| ())
        .expect_err("over max");
    assert_eq!(sqlstate(&e), "22023", "{e}");
    client
        .simple_query("SET statement_timeout = '1s'")
        .await
        .expect("set");
    let e = client
        .simple_query(SLOW)
        .await
        .map(|_| ())
        .expect_err("timed out");
    assert_eq!(sqlstate(&e), "57014", "{e}");
    assert!(message(&e).contains("statement timeout"), "{e:?}");
    assert_eq!(simple_rows(&client, "SELECT 2").await.len(), 1);
    // A join that emits far more than it reads is interrupted too (before the rule in
    // src/serve/cooperative.rs, this one ran on for minutes past its timeout). The
    // 120 s bound only catches an interrupt that never comes.
    let e = tokio::time::timeout(Duration::from_secs(120), client.simple_query(CROSS))
        .await
        .expect("the timeout interrupts a cross join")
        .map(|_| ())
        .expect_err("timed out");
    assert_eq!(sqlstate(&e), "57014", "{e}");

    // A cancel request from the client.
    client
        .simple_query("SET statement_timeout = '30s'")
        .await
        .expect("set");
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        token.cancel_query(NoTls).await
    });
    let e = client
        .query(SLOW, &[])
        .await
        .map(|_| ())
        .expect_err("cancelled");
    canceller.await.unwrap().expect("cancel request sent");
    assert_eq!(sqlstate(&e), "57014", "{e}");
    assert!(message(&e).contains("user request"), "{e:?}");
    assert_eq!(simple_rows(&client, "SELECT 3").await.len(), 1);
    assert!(server.stop().success());
}

/// A BI tool's "each customer with balance, last contact and disputes" (customers
/// left-joined to three per-customer aggregates, ordered) runs within a statement's memory
/// (`CompactViews` in the server's sessions too): in batches of 16 rows the demo's
/// customers arrive as a million do in batches of 8,192, and before the rule each join's
/// output held every buffer of the side it collected — refused under 256 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chained_joins_ordered_by_customer_run_within_a_statements_memory() {
    let mut server = Server::start(&["--trust-local", "--query-memory", "256MB"], &[]);
    let client = connect(&server.conn("ana", "")).await.expect("trusted");
    client
        .simple_query("SET datafusion.execution.batch_size = 16")
        .await
        .expect("a batch size is the session's to set");
    let rows = simple_rows(&client, EACH_CUSTOMER).await;
    assert_eq!(rows.len(), 2000);
    assert_same_rows(EACH_CUSTOMER, &arq_sql_rows(EACH_CUSTOMER), &rows);
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_over_the_maximum_are_refused_until_one_closes() {
    let mut server = Server::start(&["--trust-local", "--max-connections", "2"], &[]);
    let a = connect(&server.conn("ana", "")).await.expect("first");
    let b = connect(&server.conn("ana", "")).await.expect("second");
    let e = connect(&server.conn("ana", ""))
        .await
        .map(|_| ())
        .expect_err("third refused");
    assert_eq!(sqlstate(&e), "53300", "{e}");
    assert_eq!(simple_rows(&b, "SELECT 1").await.len(), 1);
    drop(a);
    let started = Instant::now();
    let c = loop {
        match connect(&server.conn("ana", "")).await {
            Ok(c) => break c,
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                assert_eq!(sqlstate(&e), "53300", "{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("a slot never came free: {e}"),
        }
    };
    assert_eq!(simple_rows(&c, "SELECT 1").await.len(), 1);
    drop((b, c));
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn thirty_two_clients_for_thirty_seconds_get_the_same_aging() {
    let mut server = Server::start(&["--trust-local"], &[]);
    let expected = arq_sql_rows(AGING);
    let conn = server.conn("ana", "");
    let until = Instant::now() + Duration::from_secs(30);
    let mut clients = Vec::new();
    for _ in 0..32 {
        let conn = conn.clone();
        clients.push(tokio::spawn(async move {
            let client = connect(&conn).await.expect("connect");
            let mut results = Vec::new();
            while Instant::now() < until {
                results.push(simple_rows(&client, AGING).await);
            }
            results
        }));
    }
    let mut runs = 0;
    for client in clients {
        for rows in client.await.expect("client task") {
            assert_same_rows(AGING, &expected, &rows);
            runs += 1;
        }
    }
    assert!(runs >= 32, "{runs} runs");
    let errors: Vec<_> = server
        .events("statement")
        .into_iter()
        .filter(|s| s.get("sqlstate").is_some())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bi_clients_introspection_queries_succeed() {
    let mut server = Server::start(&["--trust-local"], &[]);
    let client = connect(&server.conn("metabase", ""))
        .await
        .expect("trusted");
    let fixture =
        std::fs::read_to_string(crate::util::repo_root().join("tests/fixtures/bi_clients.sql"))
            .unwrap();
    let statements: Vec<String> = fixture
        .split("\n--;\n")
        .map(|s| {
            s.lines()
                .filter(|l| !l.starts_with("-- "))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|s| !s.trim().is_empty())
        .collect();
    assert!(statements.len() >= 30, "{} statements", statements.len());
    let mut failed = Vec::new();
    for sql in &statements {
        if let Err(e) = client.simple_query(sql).await {
            failed.push(format!("simple: {e:?}\n{sql}"));
        }
        if let Err(e) = client.query(sql.as_str(), &[]).await {
            failed.push(format!("extended: {e:?}\n{sql}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    // What a schema browser lists: the warehouse's tables, in schema `warehouse`.
    let tables = simple_rows(
        &client,
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = 'warehouse' ORDER BY 1",
    )
    .await;
    let names: Vec<_> = tables.iter().filter_map(|r| r[0].clone()).collect();
    for t in [
        "customers",
        "customers_latest",
        "invoices",
        "open_items_latest",
    ] {
        assert!(names.iter().any(|n| n == t), "{t} missing from {names:?}");
    }
    let version = simple_rows(&client, "SELECT version()").await;
    assert!(
        version[0][0]
            .as_deref()
            .is_some_and(|v| v.contains("PostgreSQL")),
        "{version:?}"
    );
    assert!(server.stop().success());
}

/// Runs psql (Debian's postgresql-client) with `args`; its stdout.
fn psql(server: &Server, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new("psql");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", server.addr.port().to_string())
        .env("PGDATABASE", "arq")
        .env("PGCONNECT_TIMEOUT", "10")
        .args(["-X", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .expect("psql runs (apt-get install postgresql-client)")
}

fn psql_ok(server: &Server, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = psql(server, env, args);
    assert!(
        out.status.success(),
        "psql {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn psql_lists_describes_queries_and_copies_to_a_client_file() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let mut server = Server::start(
        &[
            "--users",
            users.to_str().unwrap(),
            "--query-memory",
            "256MB",
        ],
        &[],
    );
    let env = [("PGUSER", "ana"), ("PGPASSWORD", PASSWORD)];

    let tables = psql_ok(&server, &env, &["-c", "\\dt warehouse.*"]);
    for t in ["customers", "invoices", "open_items", "payments"] {
        assert!(tables.contains(t), "{t} missing:\n{tables}");
    }
    let described = psql_ok(&server, &env, &["-c", "\\d open_items"]);
    for column in ["customer_id", "open_amount", "due_date", "snapshot_date"] {
        assert!(described.contains(column), "{column} missing:\n{described}");
    }
    let aging = psql_ok(&server, &env, &["-A", "-t", "-F", ",", "-c", AGING]);
    let expected: Vec<String> = arq_sql_rows(AGING)
        .into_iter()
        .map(|r| r.join(","))
        .collect();
    assert_eq!(aging.lines().collect::<Vec<_>>(), expected);

    let file = dir.path().join("items.csv");
    let query = "SELECT customer_id, currency, due_date, open_amount, \
                 days_past_due(due_date, snapshot_date) AS dpd FROM open_items_latest \
                 ORDER BY invoice_id LIMIT 50";
    psql_ok(
        &server,
        &env,
        &[
            "-c",
            &format!(
                "\\copy ({query}) TO '{}' WITH (FORMAT csv, HEADER)",
                file.display()
            ),
        ],
    );
    let copied = std::fs::read_to_string(&file).unwrap();
    assert_eq!(copied, run_ok(&["sql", "--format", "csv", query]));

    // Merges in customer order read ahead, as in `arq sql`, each queue 1/64 of the
    // statement's memory (256 MB: 4 MiB).
    let plan = psql_ok(
        &server,
        &env,
        &[
            "-A",
            "-t",
            "-c",
            "EXPLAIN SELECT customer_id, sum(amount) FROM invoices \
             GROUP BY customer_id ORDER BY customer_id",
        ],
    );
    assert!(plan.contains("BufferExec: capacity=4194304"), "{plan}");
    assert!(!plan.contains("capacity=67108864"), "{plan}");

    // Wrong password: psql's message names the user and the failure.
    let out = psql(
        &server,
        &[("PGUSER", "ana"), ("PGPASSWORD", "nope")],
        &["-c", "SELECT 1"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password authentication failed for user \"ana\"")
            || stderr.contains("Password authentication failed for user \"ana\""),
        "{stderr}"
    );
    assert!(server.stop().success());
}

#[test]
fn tls_is_required_when_asked_and_bad_setups_do_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let users = users_file(dir.path());
    let users = users.to_str().unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());

    let mut server = Server::start(
        &[
            "--users",
            users,
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--require-tls",
        ],
        &[],
    );
    let env = [
        ("PGUSER", "ana"),
        ("PGPASSWORD", PASSWORD),
        ("PGSSLMODE", "require"),
    ];
    let out = psql_ok(
        &server,
        &env,
        &["-A", "-t", "-c", "SELECT ssl FROM (SELECT true AS ssl)"],
    );
    assert_eq!(out.trim(), "t");
    let plain = psql(
        &server,
        &[
            ("PGUSER", "ana"),
            ("PGPASSWORD", PASSWORD),
            ("PGSSLMODE", "disable"),
        ],
        &["-c", "SELECT 1"],
    );
    assert!(!plain.status.success());
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(stderr.contains("requires TLS"), "{stderr}");
    assert!(server.stop().success());

    // A certificate that cannot be loaded: no server, never plain text.
    let missing = dir.path().join("missing.crt");
    let e = Server::try_start(
        &[
            "--users",
            users,
            "--tls-cert",
            missing.to_str().unwrap(),
            "--tls-key",
            key,
        ],
        &[],
    )
    .map(|_| ())
    .expect_err("refused to start");
    assert!(e.contains("TLS") && e.contains("missing.crt"), "{e}");
    let e = Server::try_start(
        &["--users", users, "--tls-cert", key, "--tls-key", cert],
        &[],
    )
    .map(|_| ())
    .expect_err("refused to start");
    assert!(e.contains("TLS"), "{e}");
    // No users and no --trust-local; --trust-local beyond loopback.
    let e = Server::try_start(&[], &[])
        .map(|_| ())
        .expect_err("refused to start");
    assert!(e.contains("no users") && e.contains("--add-user"), "{e}");
    let out = arq()
        .args(["serve", "--trust-local", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_snapshot_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("wh");
    copy_dir(&demo(), &warehouse);
    let mut server = Server::start(
        &[
            "--trust-local",
            "--warehouse",
            warehouse.to_str().unwrap(),
            "--reload-interval",
            "200ms",
        ],
        &[],
    );
    let latest = "SELECT max(snapshot_date) FROM customers_latest";
    let client = connect(&server.conn("ana", "")).await.expect("trusted");
    let before = simple_rows(&client, latest).await[0][0].clone().unwrap();
    assert_eq!(before, "2026-10-31");

    // The next month-end arrives: every snapshot table gets 2026-11-30.
    for table in ["customers", "open_items"] {
        copy_dir(
            &warehouse.join(table).join("snapshot_date=2026-10-31"),
            &warehouse.join(table).join("snapshot_date=2026-11-30"),
        );
    }
    let started = Instant::now();
    loop {
        let now = simple_rows(&client, latest).await[0][0].clone().unwrap();
        if now == "2026-11-30" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still {now}:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fresh = connect(&server.conn("ana", "")).await.expect("trusted");
    assert_eq!(
        simple_rows(&fresh, latest).await[0][0].as_deref(),
        Some("2026-11-30")
    );
    let reloads = server.events("reload");
    assert!(
        reloads.iter().any(|r| r["snapshot"] == "2026-11-30"),
        "{reloads:?}"
    );

    // A snapshot half written (customers only) is not served; the last good one is.
    copy_dir(
        &warehouse.join("customers").join("snapshot_date=2026-11-30"),
        &warehouse.join("customers").join("snapshot_date=2026-12-31"),
    );
    let started = Instant::now();
    while !server
        .events("reload")
        .iter()
        .any(|r| r.get("error").is_some())
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        simple_rows(&fresh, latest).await[0][0].as_deref(),
        Some("2026-11-30")
    );
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_cancels_running_statements_and_exits() {
    let server = Server::start(&["--trust-local"], &[]);
    let client = connect(&server.conn("ana", "")).await.expect("trusted");
    let running = tokio::spawn(async move { client.simple_query(SLOW).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let log = Arc::clone(&server.log);
    let stopper = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.stop()
    });
    let e = running
        .await
        .unwrap()
        .map(|_| ())
        .expect_err("the running statement ends with an error");
    // 57P01, or the connection closed under it.
    assert!(e.code().is_none_or(|c| c.code() == "57P01"), "{e}");
    let status = stopper.await.unwrap();
    assert!(status.success(), "{status:?}");
    let text = log.lock().unwrap().join("\n");
    assert!(
        text.contains("\"event\":\"shutdown\"") && text.contains("\"event\":\"stopped\""),
        "{text}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
