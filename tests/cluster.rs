//! `arq cluster` end to end: a scheduler and executors as separate processes on local
//! ports, clients with `--cluster`, results compared with the local session's.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::{arq, readme_sql};

/// A scheduler and its executors, stopped when dropped.
pub struct Cluster {
    pub url: String,
    scheduler: Child,
    executors: Vec<Child>,
}

impl Cluster {
    /// A scheduler on a free port and `executors` executors (two tasks at once each),
    /// each ready (polling the scheduler) when this returns; `env` goes to the executors.
    pub fn start(executors: usize, env: &[(&str, &str)]) -> Cluster {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let bind = format!("127.0.0.1:{port}");
        let scheduler = arq()
            .args(["cluster", "scheduler", "--bind", &bind])
            .stderr(Stdio::null())
            .spawn()
            .expect("arq cluster scheduler starts");
        let mut cluster = Cluster {
            url: format!("df://{bind}"),
            scheduler,
            executors: Vec::new(),
        };
        for _ in 0..executors {
            cluster.add_executor(&bind, env);
        }
        cluster
    }

    fn add_executor(&mut self, scheduler: &str, env: &[(&str, &str)]) {
        let mut cmd = arq();
        cmd.args(["cluster", "executor", "--scheduler", scheduler])
            .args(["--concurrent-tasks", "2"])
            .env("ARQ_CLUSTER_LOG", "info")
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("arq cluster executor starts");
        // Ready once it polls the scheduler for work; its log is drained afterwards.
        let (ready, wait) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Starting poll work loop") {
                    let _ = ready.send(());
                }
            }
        });
        wait.recv_timeout(Duration::from_secs(60))
            .expect("the executor connects to the scheduler within 60 s");
        self.executors.push(child);
    }

    /// `arq --cluster URL ARGS…` (the flag after the command), within `limit`.
    fn arq(&self, args: &[&str], limit: Duration) -> Output {
        let mut full: Vec<&str> = args.to_vec();
        full.insert(1, "--cluster");
        full.insert(2, &self.url);
        run_within(arq().args(&full), limit)
    }
}

/// The folder an executor started without `--work-dir` keeps its shuffle files in.
fn default_work_dir(executor: &Child) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("arq-executor-{}", executor.id()))
}

/// Stops `child` as a service manager does: SIGTERM, then SIGKILL if it has not exited
/// within `grace`. Whether it exited on the SIGTERM.
fn stop(child: &mut Child, grace: Duration) -> bool {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return false;
    }
    // SAFETY: kill(2) on the child's pid, not yet waited for (so not reused).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    while started.elapsed() < grace {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

impl Drop for Cluster {
    /// Stops the executors and then the scheduler. An executor removes its work folder as
    /// it exits (`an_executor_stopped_removes_its_work_folder`); one that had to be killed
    /// cannot, so whatever is left once it has exited is removed here.
    fn drop(&mut self) {
        for executor in &mut self.executors {
            stop(executor, Duration::from_secs(10));
            let _ = std::fs::remove_dir_all(default_work_dir(executor));
        }
        stop(&mut self.scheduler, Duration::from_secs(10));
    }
}

/// Runs `cmd`, killing it after `limit` (a test failure: it hung).
fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("arq runs");
    let pid = child.id();
    let (done, wait) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match wait.recv_timeout(limit) {
        Ok(output) => output.expect("arq's output"),
        Err(_) => {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("arq {cmd:?} did not finish within {limit:?}: a hang");
        }
    }
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text(&out)
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn the_readme_queries_and_the_nightly_give_the_local_results() {
    let cluster = Cluster::start(2, &[]);
    let runs = readme_sql();
    assert!(runs.len() >= 7, "README SQL examples found: {runs:?}");
    for run in &runs {
        let mut args: Vec<&str> = run.iter().map(String::as_str).collect();
        args.extend(["--format", "csv"]);
        let local = ok(run_within(arq().args(&args), MINUTE), "local");
        let remote = ok(
            cluster.arq(&args, MINUTE),
            &format!("{args:?} on the cluster"),
        );
        crate::util::assert_same_result(run, &remote, &local);
    }
    // The plan really is distributed.
    let explain = ok(
        cluster.arq(
            &[
                "sql",
                "EXPLAIN SELECT count(*) FROM invoices",
                "--format",
                "csv",
            ],
            MINUTE,
        ),
        "EXPLAIN",
    );
    assert!(explain.contains("distributed_plan"), "{explain}");

    // The nightly: features on the cluster, every output as the local run's.
    let tmp = tempfile::tempdir().unwrap();
    let (local_out, cluster_out) = (tmp.path().join("local"), tmp.path().join("cluster"));
    fn nightly(out: &Path) -> Vec<&str> {
        vec!["nightly", "-q", "--out", out.to_str().unwrap()]
    }
    ok(
        run_within(arq().args(nightly(&local_out)), MINUTE),
        "local nightly",
    );
    ok(
        cluster.arq(&nightly(&cluster_out), 2 * MINUTE),
        "nightly --cluster",
    );
    let (a, b) = (local_out.join("2026-10-31"), cluster_out.join("2026-10-31"));
    let files = crate::util::files_under(&a);
    assert_eq!(files, crate::util::files_under(&b));
    assert!(files.len() > 40, "{files:?}");
    for file in &files {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        if file.to_str() == Some("manifest.json") {
            let without_timings = |bytes: &[u8]| {
                let mut m: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                m["timings_ms"] = serde_json::Value::Null;
                m
            };
            assert_eq!(without_timings(&x), without_timings(&y));
        } else {
            assert!(x == y, "{} differs", file.display());
        }
    }
}

/// A query long enough (several seconds on the demo) to kill an executor under it.
const SLOW: &str = "SELECT currency, count(*) AS n, \
    sum(length(regexp_replace(repeat(customer_id, 1000), '[0-9]+', 'x', 'g'))) AS l, \
    sum(open_amount) AS open FROM open_items GROUP BY 1 ORDER BY 1";

#[test]
fn an_executor_killed_mid_query_gives_the_result_or_a_clear_error_never_a_hang() {
    let mut cluster = Cluster::start(2, &[]);
    let local = ok(
        run_within(arq().args(["sql", SLOW, "--format", "csv"]), 2 * MINUTE),
        "local",
    );
    let url = cluster.url.clone();
    let query = std::thread::spawn(move || {
        run_within(
            arq().args(["sql", "--cluster", &url, SLOW, "--format", "csv"]),
            3 * MINUTE,
        )
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !query.is_finished(),
        "the query ended before an executor could be killed under it: make SLOW slower"
    );
    let started = Instant::now();
    let mut victim = cluster.executors.remove(0);
    victim.kill().unwrap();
    victim.wait().unwrap();
    // Killed, it leaves its shuffle files behind.
    let _ = std::fs::remove_dir_all(default_work_dir(&victim));
    let out = query.join().expect("the query thread");
    if out.status.success() {
        assert_eq!(text(&out), local, "a wrong result after losing an executor");
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "not a clear error: {err}"
        );
    }
    eprintln!(
        "after the kill: {} in {:?}",
        if out.status.success() {
            "the result"
        } else {
            "an error"
        },
        started.elapsed()
    );
}

/// An executor started without `--work-dir` keeps its shuffle files in a folder of its
/// own under the temporary folder and removes it when it stops (SIGTERM, as a service
/// manager stops it): nothing of it is left behind.
#[test]
fn an_executor_stopped_removes_its_work_folder() {
    let mut cluster = Cluster::start(1, &[]);
    let dir = default_work_dir(&cluster.executors[0]);
    assert!(dir.is_dir(), "{} while it runs", dir.display());
    // A query whose aggregate is repartitioned between stages: shuffle files in the folder.
    ok(
        cluster.arq(
            &[
                "sql",
                "SELECT customer_id, sum(open_amount) AS open FROM open_items GROUP BY 1",
            ],
            2 * MINUTE,
        ),
        "the query on the cluster",
    );
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_some(),
        "no shuffle files in {} after the query",
        dir.display()
    );
    let mut executor = cluster.executors.remove(0);
    assert!(
        stop(&mut executor, Duration::from_secs(30)),
        "the executor did not exit within 30 s of SIGTERM"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn an_executor_without_arq_functions_names_the_function() {
    let cluster = Cluster::start(1, &[("ARQ_CLUSTER_EXECUTOR_WITHOUT_FUNCTIONS", "1")]);
    let out = cluster.arq(
        &[
            "sql",
            "SELECT aging_bucket(due_date, snapshot_date) AS bucket, count(*) FROM \
             open_items_latest GROUP BY 1",
        ],
        MINUTE,
    );
    let err = crate::util::error_line("an executor without functions", &out, 1);
    assert!(
        err.contains("a cluster executor does not know the function `aging_bucket`"),
        "{err}"
    );
}

#[test]
fn no_scheduler_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("df://127.0.0.1:{port}");
    let out = run_within(arq().args(["sql", "--cluster", &url, "SELECT 1"]), MINUTE);
    let err = crate::util::error_line("no scheduler", &out, 1);
    assert!(
        err.starts_with(&format!("error: cluster {url}: cannot reach the scheduler"))
            && err.contains("arq cluster scheduler"),
        "{err}"
    );
    let out = run_within(
        arq().args(["sql", "--cluster", "http://x:1", "SELECT 1"]),
        MINUTE,
    );
    let err = crate::util::error_line("a wrong URL", &out, 2);
    assert!(err.contains("df://HOST:PORT"), "{err}");
}
