//! What people read: spreadsheets (read back with calamine, their sheet XML checked for
//! the frozen header and the number formats) and the text table (row limit, NULL,
//! expanded display), from `arq sql`, `queue`, `limits`, `nightly --xlsx` and the shell.

use std::io::Read;
use std::path::Path;

use arq::output::table::thousands;
use calamine::{Data, Reader, Xlsx, open_workbook};

use crate::util::{Table, arq, run_ok, run_usage_err, run_with_stdin};

/// Every sheet of a workbook: name and rows of cells.
fn read_xlsx(path: &Path) -> Vec<(String, Vec<Vec<Data>>)> {
    let mut book: Xlsx<_> = open_workbook(path).expect("a workbook calamine opens");
    let names = book.sheet_names().to_vec();
    names
        .into_iter()
        .map(|name| {
            let range = book.worksheet_range(&name).expect("a sheet");
            let rows = range.rows().map(|r| r.to_vec()).collect();
            (name, rows)
        })
        .collect()
}

/// One file inside the xlsx zip, as text.
fn xlsx_part(path: &Path, part: &str) -> String {
    let file = std::fs::File::open(path).unwrap();
    let mut zip = zip::ZipArchive::new(file).expect("an xlsx is a zip");
    let mut text = String::new();
    zip.by_name(part)
        .unwrap_or_else(|_| panic!("{part} in {}", path.display()))
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn text(cell: &Data) -> String {
    match cell {
        Data::String(s) => s.clone(),
        other => panic!("text expected, found {other:?}"),
    }
}

fn number(cell: &Data) -> f64 {
    match cell {
        Data::Float(f) => *f,
        Data::Int(i) => *i as f64,
        other => panic!("a number expected, found {other:?}"),
    }
}

const AGING: &str = "SELECT currency, count(*) AS items, sum(open_amount) AS open_total, \
                     min(due_date) AS first_due, CAST(NULL AS VARCHAR) AS note \
                     FROM open_items_latest GROUP BY currency ORDER BY currency";

#[test]
fn sql_writes_a_spreadsheet_with_money_as_numbers_and_dates_as_dates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aging.xlsx");
    run_ok(&["sql", "--out", path.to_str().unwrap(), AGING]);
    let csv = Table::parse(&run_ok(&["sql", "--format", "csv", AGING]));

    let sheets = read_xlsx(&path);
    assert_eq!(sheets.len(), 1);
    let (name, rows) = &sheets[0];
    assert_eq!(name, "aging", "the sheet is named after the file");
    let header: Vec<String> = rows[0].iter().map(text).collect();
    assert_eq!(header, csv.header);
    assert_eq!(rows.len() - 1, csv.rows.len());
    assert!(csv.rows.len() >= 2, "several currencies in the demo");
    for (cells, record) in rows[1..].iter().zip(csv.records()) {
        assert_eq!(text(&cells[0]), record.get("currency"));
        assert_eq!(number(&cells[1]), record.num("items"));
        // Money is a number (it sums in Excel), the same to the cent as the CSV's.
        assert_eq!(
            format!("{:.2}", number(&cells[2])),
            record.get("open_total"),
            "{record:?}"
        );
        // A date is a date, not text.
        let Data::DateTime(date) = &cells[3] else {
            panic!("a date expected, found {:?}", cells[3]);
        };
        assert!(date.is_datetime(), "{date:?}");
        let excel_day_zero = chrono::NaiveDate::from_ymd_opt(1899, 12, 30).unwrap();
        let date = excel_day_zero + chrono::Days::new(date.as_f64() as u64);
        assert_eq!(date.to_string(), record.get("first_due"));
        // NULL is an empty cell.
        assert_eq!(cells[4], Data::Empty);
    }
    // The header row is frozen above the data, with a filter on it; money shows two
    // decimals and dates as dates.
    let sheet = xlsx_part(&path, "xl/worksheets/sheet1.xml");
    assert!(
        sheet.contains(r#"ySplit="1""#) && sheet.contains(r#"state="frozen""#),
        "{sheet}"
    );
    assert!(sheet.contains(r#"<autoFilter ref="A1:E"#), "{sheet}");
    let styles = xlsx_part(&path, "xl/styles.xml");
    assert!(styles.contains(r##"formatCode="#,##0.00""##), "{styles}");
    assert!(styles.contains(r#"formatCode="yyyy-mm-dd""#), "{styles}");

    // The same rows give the same bytes (the sheet's name comes from the file's).
    let elsewhere = dir.path().join("again");
    std::fs::create_dir(&elsewhere).unwrap();
    let again = elsewhere.join("aging.xlsx");
    run_ok(&["sql", "--out", again.to_str().unwrap(), AGING]);
    assert!(
        std::fs::read(&path).unwrap() == std::fs::read(&again).unwrap(),
        "the same query wrote different bytes"
    );
}

#[test]
fn a_spreadsheet_needs_a_file_and_a_failed_query_leaves_none() {
    let e = run_usage_err(&["sql", "--format", "xlsx", "SELECT 1"]);
    assert!(e.contains("--format xlsx needs an output file"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.xlsx");
    let out = arq()
        .args(["sql", "--out", path.to_str().unwrap(), "SELECT nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file, no temporary"
    );
}

#[test]
fn queue_and_limits_write_the_spreadsheets_people_work_from() {
    let dir = tempfile::tempdir().unwrap();
    for (args, name) in [
        (vec!["queue", "--collector", "K0001"], "K0001"),
        (vec!["limits", "--action", "increase,decrease"], "changes"),
    ] {
        let path = dir.path().join(format!("{name}.xlsx"));
        let mut with_out = args.clone();
        with_out.extend(["--out", path.to_str().unwrap()]);
        run_ok(&with_out);
        let mut as_csv = args.clone();
        as_csv.extend(["--format", "csv"]);
        let csv = Table::parse(&run_ok(&as_csv));
        assert!(!csv.rows.is_empty(), "{args:?} has rows on the demo");

        let sheets = read_xlsx(&path);
        let rows = &sheets[0].1;
        let header: Vec<String> = rows[0].iter().map(text).collect();
        assert_eq!(header, csv.header, "{args:?}");
        assert_eq!(rows.len() - 1, csv.rows.len(), "{args:?}");
        // Every money column is a number equal to the CSV's to the cent.
        for column in ["overdue", "current_limit", "recommended_limit"] {
            let Some(i) = csv.header.iter().position(|h| h == column) else {
                continue;
            };
            for (cells, row) in rows[1..].iter().zip(&csv.rows) {
                if row[i].is_empty() {
                    assert_eq!(cells[i], Data::Empty);
                } else {
                    assert_eq!(format!("{:.2}", number(&cells[i])), row[i], "{column}");
                }
            }
        }
    }
}

#[test]
fn the_nightly_writes_spreadsheets_when_asked_and_lists_them_in_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    run_ok(&["nightly", "--quiet", "--xlsx", "--out", out]);
    let night = dir.path().join("2026-10-31");
    let sheets = read_xlsx(&night.join("call_lists/K0001.xlsx"));
    let names: Vec<&str> = sheets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["call list", "overdue items"]);
    for ((_, rows), csv) in sheets.iter().zip(["K0001.csv", "K0001_items.csv"]) {
        let csv = std::fs::read_to_string(night.join("call_lists").join(csv)).unwrap();
        let csv = Table::parse(&csv);
        assert_eq!(rows.len() - 1, csv.rows.len());
        let header: Vec<String> = rows[0].iter().map(text).collect();
        assert_eq!(header, csv.header);
    }
    let limits = read_xlsx(&night.join("limits.xlsx"));
    assert_eq!(limits[0].0, "changes");
    assert_eq!(limits[1].0, "summary");
    let action = limits[0].1[0]
        .iter()
        .position(|c| text(c) == "action")
        .unwrap();
    assert!(limits[0].1[1..].iter().all(|r| text(&r[action]) != "keep"));

    let manifest = std::fs::read_to_string(night.join("manifest.json")).unwrap();
    for file in ["call_lists/K0001.xlsx", "escalation.xlsx", "limits.xlsx"] {
        assert!(manifest.contains(&format!("\"{file}\"")), "{file}");
    }
    // Without --xlsx, no spreadsheet.
    let plain = tempfile::tempdir().unwrap();
    run_ok(&[
        "nightly",
        "--quiet",
        "--out",
        plain.path().to_str().unwrap(),
    ]);
    let files = crate::util::files_under(plain.path());
    assert!(
        files
            .iter()
            .all(|f| f.extension().is_none_or(|e| e != "xlsx")),
        "{files:?}"
    );
}

#[test]
fn a_table_shows_40_rows_and_counts_the_rest() {
    let total: usize = run_ok(&[
        "sql",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM open_items_latest",
    ])
    .lines()
    .nth(1)
    .unwrap()
    .parse()
    .unwrap();
    assert!(total > 1000, "{total}");
    let out = run_ok(&["sql", "SELECT customer_id FROM open_items_latest"]);
    let data_lines = out.lines().filter(|l| l.starts_with("| C")).count();
    assert_eq!(data_lines, 40, "{out}");
    let more = format!("… {} more rows", thousands(total - 40));
    assert!(out.contains(&more), "{more} missing in {out}");
    assert!(
        out.ends_with(&format!("{} rows\n", thousands(total))),
        "{out}"
    );

    let five = run_ok(&[
        "sql",
        "--max-rows",
        "5",
        "SELECT customer_id FROM open_items_latest",
    ]);
    assert_eq!(five.lines().filter(|l| l.starts_with("| C")).count(), 5);
    let all = run_ok(&[
        "sql",
        "--max-rows",
        "0",
        "SELECT customer_id FROM open_items_latest",
    ]);
    assert_eq!(all.lines().filter(|l| l.starts_with("| C")).count(), total);
    assert!(!all.contains("more rows"));
    // A .txt file gets every row.
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("items.txt");
    run_ok(&[
        "sql",
        "--out",
        txt.to_str().unwrap(),
        "SELECT customer_id FROM open_items_latest",
    ]);
    let file = std::fs::read_to_string(&txt).unwrap();
    assert_eq!(file.lines().filter(|l| l.starts_with("| C")).count(), total);
}

#[test]
fn the_shell_sets_the_row_limit_null_text_and_expanded_display() {
    let script = "\\pset max_rows 2\n\
                  \\pset null (none)\n\
                  SELECT customer_id, CAST(NULL AS INT) AS gap FROM open_items_latest;\n\
                  \\x on\n\
                  SELECT 1 AS one, 'a' AS letter;\n\
                  \\pset\n";
    let out = run_with_stdin(&["shell"], script);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("| C")).count(),
        2,
        "{text}"
    );
    assert!(text.contains("| (none) |"), "{text}");
    assert!(text.contains("more rows"), "{text}");
    assert!(text.contains("Expanded display is on."), "{text}");
    assert!(text.contains("-[ RECORD 1 ]"), "{text}");
    assert!(text.contains("one    | 1\nletter | a\n"), "{text}");
    assert!(
        text.contains("max_rows 2\nnull '(none)'\nexpanded on\n"),
        "{text}"
    );
    let out = run_with_stdin(&["shell"], "\\pset max_rows many\n");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn every_command_lists_only_its_own_options_with_examples() {
    let help = |command: &str| run_ok(&[command, "--help"]);
    for command in crate::util::COMMANDS {
        assert!(help(command).contains("Examples:\n  arq "), "{command}");
    }
    let generate = help("generate");
    for absent in ["--warehouse", "--model", "--as-of", "--max-rows"] {
        assert!(!generate.contains(absent), "generate lists {absent}");
    }
    let functions = help("functions");
    assert!(functions.contains("--model") && !functions.contains("--warehouse"));
    let tables = help("tables");
    assert!(tables.contains("--warehouse") && !tables.contains("--model"));
    assert!(help("sql").contains("--max-rows") && help("sql").contains("--as-of"));
    // Before the command still works.
    let one = run_ok(&[
        "--as-of",
        "2026-06-15",
        "sql",
        "--format",
        "csv",
        "SELECT 1 AS one",
    ]);
    assert_eq!(one, "one\n1\n");
}
