//! Warehouses and nights in a bucket, against a real S3 server: moto
//! (`python -m moto.server`), installed on first use into a virtualenv under `target/`
//! (`target/s3-venv`), one server per test on a free local port. A test that cannot
//! start it fails and says why; it never passes without the server.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::util::{arq, demo, readme_sql, repo_root};

/// The virtualenv's python with moto and boto3, installed once per test run.
fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let venv = repo_root().join("target/s3-venv");
        let python = venv.join("bin/python");
        let has_moto = |python: &Path| {
            Command::new(python)
                .args(["-c", "import moto.server, boto3, flask"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if has_moto(&python) {
            return Ok(python);
        }
        let steps: [(&str, Vec<&str>); 2] = [
            ("python3", vec!["-m", "venv", venv.to_str().unwrap()]),
            (
                python.to_str().unwrap(),
                vec![
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "moto[server,s3]==5.*",
                    "boto3",
                ],
            ),
        ];
        for (program, args) in steps {
            let out = Command::new(program)
                .args(&args)
                .output()
                .map_err(|e| format!("{program} {args:?}: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{program} {args:?} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        match has_moto(&python) {
            true => Ok(python),
            false => Err("moto was installed but does not import".into()),
        }
    });
    match found {
        Ok(python) => python,
        Err(e) => panic!("cannot install the local S3 server (moto) into target/s3-venv: {e}"),
    }
}

/// A moto server on a free local port, stopped when dropped.
pub struct S3 {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

impl S3 {
    pub fn start() -> S3 {
        Self::start_with(&[])
    }

    /// `env`: extra settings of the server (e.g. turning its authentication on).
    fn start_with(env: &[(&str, &str)]) -> S3 {
        let python = python();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::env::temp_dir().join(format!("arq-moto-{port}.log"));
        let child = Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(&log).expect("moto log"))
            .stderr(std::fs::File::create(log.with_extension("err")).expect("moto log"))
            .spawn()
            .expect("moto starts");
        let server = S3 {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the local S3 server (moto) did not start within 60 s; see {}",
                server.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// The AWS tools' settings for this server.
    pub fn settings(&self) -> [(&'static str, &str); 5] {
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &self.endpoint),
            ("AWS_ALLOW_HTTP", "true"),
        ]
    }

    fn env(&self, cmd: &mut Command) {
        cmd.envs(self.settings())
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE");
    }

    /// Runs `arq ARGS` against this server.
    fn arq(&self, args: &[&str]) -> Output {
        let mut cmd = arq();
        self.env(&mut cmd);
        cmd.args(args).output().expect("arq runs")
    }

    fn arq_ok(&self, args: &[&str]) -> String {
        let out = self.arq(args);
        assert!(
            out.status.success(),
            "arq {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `arq ARGS`, expects exit code 1 and one `error:` line; returns it.
    fn arq_err(&self, args: &[&str]) -> String {
        crate::util::error_line(&format!("arq {args:?}"), &self.arq(args), 1)
    }

    /// `tests/fixtures/s3.py ARGS` (bucket chores arq does not do itself).
    fn tool(&self, args: &[&str]) -> Vec<u8> {
        let mut cmd = Command::new(python());
        self.env(&mut cmd);
        let out = cmd
            .arg(repo_root().join("tests/fixtures/s3.py"))
            .args(args)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "s3.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        String::from_utf8(self.tool(&["list", bucket, prefix]))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A bucket holding the demo warehouse under `wh/`.
    pub fn with_demo(&self, bucket: &str) {
        self.tool(&["create", bucket]);
        self.tool(&["upload", demo().to_str().unwrap(), bucket, "wh"]);
    }
}

impl Drop for S3 {
    /// Stops the server; its logs are kept only when the test failed (they are named in
    /// its messages).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
            let _ = std::fs::remove_file(self.log.with_extension("err"));
        }
    }
}

#[test]
fn a_warehouse_in_a_bucket_answers_as_the_local_folder() {
    let s3 = S3::start();
    s3.with_demo("arq-demo");
    let runs = readme_sql();
    assert!(runs.len() >= 7, "README SQL examples found: {runs:?}");
    let local = demo();
    for run in &runs {
        let args: Vec<&str> = run.iter().map(String::as_str).collect();
        let mut remote_args = vec!["-w", "s3://arq-demo/wh"];
        remote_args.extend(&args);
        remote_args.extend(["--format", "csv"]);
        let mut local_args = vec!["-w", local.to_str().unwrap()];
        local_args.extend(&args);
        local_args.extend(["--format", "csv"]);
        let (remote, local) = (s3.arq_ok(&remote_args), s3.arq_ok(&local_args));
        crate::util::assert_same_result(run, &remote, &local);
    }
    // Every command that reads a warehouse: the same output from the bucket.
    for command in [
        vec!["score", "--format", "csv"],
        vec!["queue", "--format", "csv"],
        vec!["limits", "--format", "csv"],
        vec![
            "backtest",
            "--from",
            "2026-03-31",
            "--to",
            "2026-04-30",
            "--format",
            "csv",
        ],
    ] {
        let mut remote_args = vec!["-w", "s3://arq-demo/wh"];
        remote_args.extend(&command);
        let mut local_args = vec!["-w", local.to_str().unwrap()];
        local_args.extend(&command);
        let remote = s3.arq_ok(&remote_args);
        assert!(remote.lines().count() > 2, "{command:?}");
        assert!(remote == s3.arq_ok(&local_args), "{command:?} differs");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (from_bucket, from_folder) = (tmp.path().join("b.json"), tmp.path().join("f.json"));
    let train = |w: &str, out: &Path| {
        s3.arq_ok(&["-w", w, "train", "-q", "--out", out.to_str().unwrap()]);
        std::fs::read_to_string(out).unwrap().replace(w, "W")
    };
    assert!(
        train("s3://arq-demo/wh", &from_bucket) == train(local.to_str().unwrap(), &from_folder),
        "the model trained on the bucket differs"
    );
    // The listing: same tables and snapshots (only the warehouse's name differs).
    let tables = s3.arq_ok(&["-w", "s3://arq-demo/wh/", "tables"]);
    let local_tables = s3.arq_ok(&["-w", local.to_str().unwrap(), "tables"]);
    assert!(
        tables.starts_with("warehouse s3://arq-demo/wh: 12 snapshots"),
        "{tables}"
    );
    assert_eq!(
        tables.replace("s3://arq-demo/wh", "W"),
        local_tables.replace(local.to_str().unwrap(), "W")
    );
    // A file:// URL is the local folder.
    let url = format!("file://{}", local.display());
    let query = ["sql", "-c", "SELECT count(*) FROM open_items_latest"];
    let mut file_args = vec!["-w", url.as_str()];
    file_args.extend(query);
    let mut s3_args = vec!["-w", "s3://arq-demo/wh"];
    s3_args.extend(query);
    assert_eq!(s3.arq_ok(&file_args), s3.arq_ok(&s3_args));
}

/// The files of the night `date` that `LATEST` points at, downloaded into `dir`.
fn download_night(s3: &S3, bucket: &str, out: &str, date: &str, dir: &Path) -> String {
    let pointer = s3.tool(&["get", bucket, &format!("{out}/{date}/LATEST")]);
    let run = String::from_utf8(pointer).unwrap().trim().to_string();
    s3.tool(&[
        "download",
        bucket,
        &format!("{out}/{date}/{run}"),
        dir.to_str().unwrap(),
    ]);
    run
}

/// A manifest without what differs between two runs on the same inputs: the
/// warehouse's name, the timings, and the record of the report (which names the
/// warehouse).
fn comparable_manifest(path: &Path) -> serde_json::Value {
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    manifest["warehouse"]["path"] = "W".into();
    manifest["timings_ms"] = serde_json::Value::Null;
    for output in manifest["outputs"].as_array_mut().unwrap() {
        if output["file"] == "report.html" {
            output["bytes"] = serde_json::Value::Null;
            output["fingerprint"] = serde_json::Value::Null;
        }
    }
    manifest
}

/// Every file of two nights byte for byte, but the manifest (compared without the
/// warehouse's name and timings) and the report (which names the warehouse).
fn assert_same_night(a: &Path, a_name: &str, b: &Path, b_name: &str) {
    let files = crate::util::files_under(a);
    assert_eq!(files, crate::util::files_under(b));
    assert!(files.len() > 40, "{files:?}");
    for file in &files {
        let (x, y) = (a.join(file), b.join(file));
        match file.to_str().unwrap() {
            "manifest.json" => assert_eq!(comparable_manifest(&x), comparable_manifest(&y)),
            // The report names the warehouse (HTML-escaped).
            "report.html" => {
                let read = |path: &Path, name: &str| {
                    std::fs::read_to_string(path)
                        .unwrap()
                        .replace(&name.replace('/', "&#x2f;"), "W")
                };
                assert!(read(&x, a_name) == read(&y, b_name), "report.html differs");
            }
            _ => assert!(
                std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
                "{} differs",
                file.display()
            ),
        }
    }
}

#[test]
fn the_nightly_reads_and_writes_a_bucket_as_a_local_folder() {
    let s3 = S3::start();
    s3.with_demo("arq-nights");
    let tmp = tempfile::tempdir().unwrap();
    let local_out = tmp.path().join("local");
    let demo = demo();
    s3.arq_ok(&[
        "-w",
        demo.to_str().unwrap(),
        "nightly",
        "--quiet",
        "--out",
        local_out.to_str().unwrap(),
    ]);
    let to_bucket = [
        "-w",
        "s3://arq-nights/wh",
        "nightly",
        "--quiet",
        "--out",
        "s3://arq-nights/out",
    ];
    let summary = s3.arq_ok(&to_bucket);
    assert!(
        summary.contains("wrote 56 files to s3://arq-nights/out/2026-10-31"),
        "{summary}"
    );
    assert!(summary.contains("published as s3://arq-nights/out/2026-10-31/run-"));
    let first = tmp.path().join("first");
    let run = download_night(&s3, "arq-nights", "out", "2026-10-31", &first);
    assert_same_night(
        &first,
        "s3://arq-nights/wh",
        &local_out.join("2026-10-31"),
        demo.to_str().unwrap(),
    );

    // A rerun: a new run, LATEST moves to it, the same files; the old run is untouched.
    s3.arq_ok(&to_bucket);
    let second = tmp.path().join("second");
    let rerun = download_night(&s3, "arq-nights", "out", "2026-10-31", &second);
    assert_ne!(run, rerun);
    assert_same_night(&first, "s3://arq-nights/wh", &second, "s3://arq-nights/wh");
    assert_eq!(
        s3.keys("arq-nights", &format!("out/2026-10-31/{run}/"))
            .len(),
        56
    );

    // The invoice settlement of a warehouse in a bucket, kept in a local folder: the
    // demo's invoices paid in full, as from the local warehouse.
    let kept = tmp.path().join("kept");
    let settled = s3.arq_ok(&[
        "-w",
        "s3://arq-nights/wh",
        "settle",
        "--out",
        kept.to_str().unwrap(),
    ]);
    assert!(
        settled.contains("rebuilt (there was none)")
            && settled.contains("248647 settled and 23756 open invoices, 274825 payments by month; used by the features"),
        "{settled}"
    );

    // The report reads the bucket's nights as it reads a local folder's.
    let from_bucket = tmp.path().join("bucket.html");
    let from_folder = tmp.path().join("folder.html");
    s3.arq_ok(&[
        "-w",
        demo.to_str().unwrap(),
        "report",
        "--nights",
        "s3://arq-nights/out",
        "--out",
        from_bucket.to_str().unwrap(),
    ]);
    s3.arq_ok(&[
        "-w",
        demo.to_str().unwrap(),
        "report",
        "--nights",
        local_out.to_str().unwrap(),
        "--out",
        from_folder.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(&from_bucket).unwrap(),
        std::fs::read(&from_folder).unwrap()
    );
}

#[test]
fn a_run_killed_or_failing_while_uploading_leaves_the_previous_night() {
    let s3 = S3::start();
    s3.with_demo("arq-killed");
    let nightly = [
        "-w",
        "s3://arq-killed/wh",
        "nightly",
        "--quiet",
        "--out",
        "s3://arq-killed/out",
    ];
    // Runs `arq nightly` until it has uploaded `uploads` files of a new run, then kills it.
    // Its temporary folder the test's own: a killed run cannot remove its work folder.
    let scratch = tempfile::tempdir().unwrap();
    let kill_after = |uploads: usize| {
        let committed = current_run(&s3);
        let mut cmd = arq();
        s3.env(&mut cmd);
        let mut child = cmd
            .args(nightly)
            .env("ARQ_NIGHTLY_PAUSE_AFTER_UPLOADS", uploads.to_string())
            .env("TMPDIR", scratch.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let new_files = s3
                .keys("arq-killed", "out/2026-10-31/run-")
                .into_iter()
                .filter(|k| committed.is_empty() || !k.contains(&committed))
                .count();
            if new_files >= uploads {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the run never uploaded {uploads} files"
            );
            assert!(child.try_wait().unwrap().is_none(), "the run ended early");
            std::thread::sleep(Duration::from_millis(200));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    };
    // A first run killed before its pointer: no night at all.
    let pointer = "out/2026-10-31/LATEST";
    kill_after(5);
    assert!(s3.keys("arq-killed", pointer).is_empty());
    let killed_runs = s3.keys("arq-killed", "out/2026-10-31/run-");
    // Uploads run 8 at a time: at least the five, a few more may have landed.
    assert!((5..54).contains(&killed_runs.len()), "{killed_runs:?}");
    assert!(!killed_runs.iter().any(|k| k.ends_with("manifest.json")));
    // The report finds no night there (nothing passes for a finished one).
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo();
    let html = tmp.path().join("r.html");
    let report = |nights: &str, out: &Path| {
        s3.arq_ok(&[
            "-w",
            demo.to_str().unwrap(),
            "report",
            "--sections",
            "collectors",
            "--nights",
            nights,
            "--out",
            out.to_str().unwrap(),
        ]);
        std::fs::read_to_string(out).unwrap()
    };
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(
        report("s3://arq-killed/out", &html),
        report(empty.to_str().unwrap(), &tmp.path().join("e.html"))
    );

    // A committed night, then a rerun killed mid-upload and one that fails: the
    // committed night stays the one readers see, file for file.
    s3.arq_ok(&nightly);
    let committed = current_run(&s3);
    let before = tmp.path().join("before");
    download_night(&s3, "arq-killed", "out", "2026-10-31", &before);
    kill_after(7);
    assert_eq!(current_run(&s3), committed);
    let mut cmd = arq();
    s3.env(&mut cmd);
    let failed = cmd
        .args(nightly)
        .env("ARQ_NIGHTLY_FAIL_AFTER_UPLOADS", "3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ARQ_NIGHTLY_FAIL_AFTER_UPLOADS"),
        "{stderr}"
    );
    assert_eq!(current_run(&s3), committed);
    let after = tmp.path().join("after");
    download_night(&s3, "arq-killed", "out", "2026-10-31", &after);
    assert_same_night(&before, "W", &after, "W");
}

/// The run `LATEST` names (empty when there is none).
fn current_run(s3: &S3) -> String {
    if s3.keys("arq-killed", "out/2026-10-31/LATEST").is_empty() {
        return String::new();
    }
    let pointer = s3.tool(&["get", "arq-killed", "out/2026-10-31/LATEST"]);
    String::from_utf8(pointer).unwrap().trim().to_string()
}

#[test]
fn storage_failures_are_one_line_naming_the_url_and_object() {
    let s3 = S3::start();
    s3.with_demo("arq-errors");
    let aging = "SELECT count(*) FROM open_items_latest";
    // A missing bucket.
    let e = s3.arq_err(&["-w", "s3://arq-nobucket/wh", "sql", "-c", aging]);
    assert!(
        e.contains("s3://arq-nobucket/wh") && e.contains("the bucket does not exist"),
        "{e}"
    );
    let e = s3.arq_err(&["-w", "s3://arq-nobucket/wh", "nightly", "--out", "out-x"]);
    assert!(e.contains("the bucket does not exist"), "{e}");
    // Nothing under the prefix.
    let e = s3.arq_err(&["-w", "s3://arq-errors/nothing", "sql", "-c", aging]);
    assert!(
        e.contains("s3://arq-errors/nothing") && e.contains("nothing is stored"),
        "{e}"
    );
    // A table whose objects were deleted.
    s3.tool(&["delete", "arq-errors", "wh/payments/"]);
    let e = s3.arq_err(&["-w", "s3://arq-errors/wh", "sql", "-c", aging]);
    assert!(
        e.contains("table `payments`: folder s3://arq-errors/wh/payments is missing"),
        "{e}"
    );
    // A truncated object: named with its URL.
    s3.tool(&["upload", demo().to_str().unwrap(), "arq-errors", "wh"]);
    let tmp = tempfile::tempdir().unwrap();
    let cut = tmp.path().join("part-0.parquet");
    let whole = std::fs::read(demo().join("invoices/part-00000.parquet")).unwrap();
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    s3.tool(&[
        "put",
        "arq-errors",
        "wh/invoices/part-00000.parquet",
        cut.to_str().unwrap(),
    ]);
    let e = s3.arq_err(&["-w", "s3://arq-errors/wh", "nightly", "--out", "out-x"]);
    assert!(
        e.contains("s3://arq-errors/wh/invoices/part-00000.parquet")
            && e.contains("not a readable Parquet file"),
        "{e}"
    );
    // Plain http without AWS_ALLOW_HTTP is refused.
    let mut cmd = arq();
    s3.env(&mut cmd);
    let out = cmd
        .env_remove("AWS_ALLOW_HTTP")
        .args(["-w", "s3://arq-errors/wh", "sql", "-c", aging])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("set AWS_ALLOW_HTTP=true"), "{stderr}");
    // An endpoint nobody answers: an error after the retries, not a hang.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let started = Instant::now();
    let mut cmd = arq();
    s3.env(&mut cmd);
    let mut child = cmd
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .args(["-w", "s3://arq-errors/wh", "sql", "-c", aging])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "arq hangs on an endpoint that does not answer"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("cannot reach the storage endpoint")
            && stderr.contains("s3://arq-errors/wh"),
        "{stderr}"
    );
}

#[test]
fn a_wrong_key_is_refused_with_a_clear_error() {
    // Authentication on after the two requests that set the bucket up.
    let s3 = S3::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "2")]);
    s3.tool(&["create", "arq-auth"]);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("x.parquet");
    std::fs::copy(demo().join("collectors/part-00000.parquet"), &file).unwrap();
    s3.tool(&[
        "put",
        "arq-auth",
        "wh/collectors/part-00000.parquet",
        file.to_str().unwrap(),
    ]);
    for args in [
        vec!["-w", "s3://arq-auth/wh", "sql", "-c", "SELECT 1"],
        vec!["-w", "s3://arq-auth/wh", "nightly", "--out", "out-x"],
    ] {
        let e = s3.arq_err(&args);
        assert!(
            e.contains("s3://arq-auth/wh") && e.contains("access denied"),
            "{e}"
        );
    }
}

#[test]
fn generate_writes_a_warehouse_into_a_bucket() {
    let s3 = S3::start();
    s3.tool(&["create", "arq-gen"]);
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");
    let args = [
        "--customers",
        "40",
        "--months",
        "3",
        "--seed",
        "7",
        "--quiet",
    ];
    let mut to_bucket = vec!["generate", "--out", "s3://arq-gen/wh"];
    to_bucket.extend(args);
    s3.arq_ok(&to_bucket);
    let mut to_folder = vec!["generate", "--out", local.to_str().unwrap()];
    to_folder.extend(args);
    s3.arq_ok(&to_folder);
    let downloaded = tmp.path().join("downloaded");
    s3.tool(&["download", "arq-gen", "wh", downloaded.to_str().unwrap()]);
    crate::util::assert_same_tree(&local, &downloaded);
    // Not over an existing warehouse without --force; with it, replaced.
    let e = s3.arq_err(&to_bucket);
    assert!(
        e.contains("s3://arq-gen/wh already holds") && e.contains("--force"),
        "{e}"
    );
    to_bucket.push("--force");
    s3.arq_ok(&to_bucket);
    let tables = s3.arq_ok(&["-w", "s3://arq-gen/wh", "tables"]);
    assert!(
        tables.starts_with("warehouse s3://arq-gen/wh: 3 snapshots"),
        "{tables}"
    );
}
