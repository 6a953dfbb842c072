//! `arq shell` driven through stdin.

use std::io::Write;
use std::process::Stdio;

use crate::util::arq;

fn shell(input: &str) -> (String, String, Option<i32>) {
    let mut child = arq()
        .args(["shell", "--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
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
    let (out, _, code) = shell("\\d\n\\d collectors\n\\d nope\n");
    assert_eq!(code, Some(0));
    assert!(out.lines().any(|l| l == "open_items_latest"), "{out}");
    assert!(
        out.contains("  daily_capacity         Int32 not null"),
        "{out}"
    );
    assert!(
        out.contains("error: no table or view named `nope`"),
        "{out}"
    );
}

#[test]
fn errors_do_not_end_the_session() {
    let (out, _, code) =
        shell("SELECT nope FROM collectors;\n\\bogus\n\\format json\nSELECT 7 AS seven;\n");
    assert_eq!(code, Some(0));
    assert!(out.contains("error: ") && out.contains("nope"), "{out}");
    assert!(out.contains("unknown command `\\bogus`"), "{out}");
    assert!(out.contains(r#"[{"seven":7}]"#), "{out}");
}

#[test]
fn a_last_statement_without_semicolon_runs_at_end_of_input() {
    let (out, _, code) = shell("SELECT 3 AS three");
    assert_eq!(code, Some(0));
    assert_eq!(out, "three\n3\n");
}

#[test]
fn backslash_functions_documents_the_sql_functions() {
    let (out, _, code) = shell("\\functions days_past\n\\functions nope\n");
    assert_eq!(code, Some(0));
    assert!(out.starts_with("days_past_due (scalar)\n"), "{out}");
    assert!(
        out.contains("error: no arq function matches `nope`"),
        "{out}"
    );
}
