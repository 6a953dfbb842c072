//! What arq prints, as insta snapshots (`tests/snapshots/`), so that a change of the
//! printed output is a reviewable diff. Timings and temporary paths are filtered out.
//! After an intended change: `INSTA_UPDATE=always cargo test --test e2e cli_output`, then
//! review the `.snap` files.

use crate::util::{demo, repo_root, run, run_ok};

/// Snapshot settings with the run's variable parts replaced.
fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    // The checkout's folder differs from machine to machine.
    let root: String = repo_root()
        .display()
        .to_string()
        .chars()
        .flat_map(|c| match c.is_ascii_alphanumeric() || c == '/' {
            true => vec![c],
            false => vec!['\\', c],
        })
        .collect();
    settings.add_filter(&root, "[repo]");
    settings.add_filter(r"in \d+\.\d+ s", "in [seconds] s");
    settings.add_filter(r"/tmp/[^\s:]+", "[tmp]");
    settings.add_filter(r"\.tmp[^\s:/]+", "[tmp]");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
fn tables_listing() {
    settings().bind(|| insta::assert_snapshot!("tables", run_ok(&["tables"])));
}

#[test]
fn functions_listing() {
    settings().bind(|| insta::assert_snapshot!("functions", run_ok(&["functions"])));
}

#[test]
fn one_collectors_queue() {
    let text = run_ok(&["queue", "--collector", "K0001"]);
    settings().bind(|| insta::assert_snapshot!("queue_K0001", text));
}

#[test]
fn one_customers_limit() {
    let text = run_ok(&["limits", "--customer", "C0000042"]);
    settings().bind(|| insta::assert_snapshot!("limits_C0000042", text));
}

#[test]
fn nightly_summary() {
    let out = tempfile::tempdir().unwrap();
    let text = run_ok(&[
        "nightly",
        "-q",
        "--warehouse",
        demo().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    settings().bind(|| insta::assert_snapshot!("nightly_summary", text));
}

#[test]
fn help_of_every_command() {
    let top = run_ok(&["--help"]);
    settings().bind(|| insta::assert_snapshot!("help", top));
    for command in crate::util::COMMANDS {
        let out = run(&[command, "--help"]);
        assert!(out.status.success(), "arq {command} --help failed");
        let text = String::from_utf8(out.stdout).expect("utf-8 help");
        settings().bind(|| insta::assert_snapshot!(format!("help_{command}"), text));
    }
}

/// `arq sql ARGS` with `COLUMNS` set to `width`, as a terminal of that width.
fn sql_at_width(width: &str, args: &[&str]) -> String {
    let out = crate::util::arq()
        .env("COLUMNS", width)
        .arg("sql")
        .args(args)
        .output()
        .expect("arq runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn table_printer_nulls_numbers_and_the_row_limit() {
    let query = "SELECT customer_id, currency, open_amount, \
                 CASE WHEN open_amount > 1000 THEN 'large' END AS size \
                 FROM open_items_latest ORDER BY customer_id, invoice_id";
    let text = sql_at_width("200", &["--max-rows", "6", query]);
    settings().bind(|| insta::assert_snapshot!("table_row_limit", text));
    let text = sql_at_width("200", &["--max-rows", "3", "--null", "∅", query]);
    settings().bind(|| insta::assert_snapshot!("table_null_text", text));
}

#[test]
fn table_printer_wide_tables_switch_to_expanded_display() {
    let query = "SELECT * FROM customers_latest ORDER BY customer_id LIMIT 2";
    let text = sql_at_width("80", &[query]);
    settings().bind(|| insta::assert_snapshot!("table_wide_expanded", text));
    // Asked not to, it stays a table however wide.
    let boxed = sql_at_width("80", &["--expanded", "off", query]);
    assert!(boxed.lines().next().unwrap().len() > 80, "{boxed}");
    assert!(!boxed.contains("RECORD"));
}
