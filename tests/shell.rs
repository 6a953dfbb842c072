//! `arq shell` driven through stdin.

use crate::util::run_with_stdin;

fn shell(input: &str) -> (String, String, Option<i32>) {
    shell_with(&[], input)
}

fn shell_with(flags: &[&str], input: &str) -> (String, String, Option<i32>) {
    let mut args = vec!["shell", "--format", "csv"];
    args.extend_from_slice(flags);
    let out = run_with_stdin(&args, input);
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code(),
    )
}

#[test]
fn multi_line_statements_run_at_the_semicolon() {
    let (out, err, code) = shell(
        "SELECT count(*)\n  AS n\nFROM collectors\n;\nSELECT 1 + 1 AS two;\n\\q\nSELECT 'not reached';\n",
    );
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "n");
    assert!(lines[1].parse::<u32>().unwrap() >= 4);
    assert_eq!(&lines[2..], ["two", "2"]);
}

#[test]
fn backslash_d_lists_tables_and_columns() {
    let (out, err, code) = shell("\\d\n\\d collectors\n\\d nope\n");
    assert!(out.lines().any(|l| l == "open_items_latest"), "{out}");
    assert!(
        out.contains("  daily_capacity         Int32 not null"),
        "{out}"
    );
    // In a script an error stops it: on stderr, naming the command, exit code 1.
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        "error: statement 3 (`\\d nope`): no table or view named `nope`\n"
    );
}

#[test]
fn a_script_stops_at_the_first_error_with_exit_code_1() {
    let (out, err, code) =
        shell("SELECT 1 AS one;\nSELECT nope\n  FROM collectors;\nSELECT 'not reached' AS r;\n");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(out, "one\n1\n");
    assert!(
        err.starts_with("error: statement 2 (`SELECT nope`): ") && err.contains("nope"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn with_continue_on_error_every_statement_runs_and_the_exit_code_says_one_failed() {
    let (out, err, code) = shell_with(
        &["--continue-on-error"],
        "SELECT nope FROM collectors;\n\\bogus\n\\format json\nSELECT 7 AS seven;\n",
    );
    assert_eq!(code, Some(1));
    assert!(!out.contains("error"), "errors go to stderr: {out}");
    assert!(out.contains(r#"[{"seven":7}]"#), "{out}");
    assert!(
        err.contains("statement 1 (`SELECT nope FROM collectors;`)"),
        "{err}"
    );
    assert!(err.contains("unknown command `\\bogus`"), "{err}");
}

#[test]
fn a_last_statement_without_semicolon_runs_at_end_of_input() {
    let (out, _, code) = shell("SELECT 3 AS three");
    assert_eq!(code, Some(0));
    assert_eq!(out, "three\n3\n");
}

#[test]
fn backslash_functions_documents_the_sql_functions() {
    let (out, err, code) = shell("\\functions days_past\n\\functions nope\n");
    assert!(out.starts_with("days_past_due (scalar)\n"), "{out}");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("error: statement 2 (`\\functions nope`): no arq function matches `nope`"),
        "{err}"
    );
}

#[test]
fn a_file_runs_with_f_or_backslash_i() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.sql");
    std::fs::write(&script, "SELECT 4 AS four;\nSELECT 5\n  AS five;\n").unwrap();
    let path = script.to_str().unwrap();
    let out = crate::util::run_ok(&["shell", "--format", "csv", "-f", path]);
    assert_eq!(out, "four\n4\nfive\n5\n");
    let (out, err, code) = shell(&format!("\\i {path}\nSELECT 6 AS six;\n"));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "four\n4\nfive\n5\nsix\n6\n");
    // A failing statement in the file stops the script like any other.
    std::fs::write(&script, "SELECT nope;\nSELECT 1;\n").unwrap();
    let out = crate::util::run(&["shell", "--format", "csv", "-f", path]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: statement 1 (`SELECT nope;`)"),
        "{err}"
    );
}

#[test]
fn duckdb_dot_commands_are_answered_with_the_arq_equivalent() {
    let (out, err, code) = shell_with(&["--continue-on-error"], ".tables\nSELECT 8 AS eight;\n");
    assert_eq!(code, Some(1));
    assert_eq!(out, "eight\n8\n", "the next statement is not swallowed");
    assert!(
        err.contains("`.tables` is a DuckDB command; in arq, \\d lists the tables and views"),
        "{err}"
    );
}

#[test]
fn results_go_to_a_file_with_backslash_o_and_timing_prints_each_statement() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.csv");
    let script = format!(
        "\\timing\nSELECT 1 AS one;\n\\o {}\n\\format csv\nSELECT 2 AS two;\n\\o\nSELECT 3 AS three;\n",
        file.display()
    );
    let out = run_with_stdin(&["shell"], &script);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("Timing is on.\n"), "{stdout}");
    assert_eq!(stdout.matches("Time: ").count(), 3, "{stdout}");
    assert!(
        stdout.contains("three\n3\n") && !stdout.contains("two"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "two\n2\n");
}

#[test]
fn the_shell_refuses_parquet_on_a_terminal() {
    let err = crate::util::run_usage_err(&["shell", "--format", "parquet"]);
    assert!(err.contains("the shell prints text"), "{err}");
}
