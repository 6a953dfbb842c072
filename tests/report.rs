//! `arq report`: its figures equal the same figures from `arq sql` (read from the HTML with
//! an HTML parser), a real browser renders every section and chart, thin warehouses give
//! "not enough data" notes, hostile text stays escaped and intact, a rerun is the same
//! bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Table, generate_small, rewrite, run_ok, select_parquet};

/// Runs `arq report ARGS --out DIR/name` and returns the HTML.
fn report(dir: &Path, name: &str, args: &[&str]) -> String {
    let out = dir.join(name);
    let mut all = vec!["report"];
    all.extend(args);
    all.extend(["--out", out.to_str().unwrap()]);
    run_ok(&all);
    std::fs::read_to_string(out).unwrap()
}

/// The text of every element matching `selector`; `A B` (a descendant) is resolved one
/// step at a time on the inner HTML of each match.
fn texts(html: &str, selector: &str) -> Vec<String> {
    select(html, selector, |n, p| n.inner_text(p).trim().to_string())
}

fn select(html: &str, selector: &str, take: fn(&tl::Node, &tl::Parser) -> String) -> Vec<String> {
    let (first, rest) = match selector.split_once(' ') {
        Some((first, rest)) => (first, Some(rest)),
        None => (selector, None),
    };
    let dom = tl::parse(html, tl::ParserOptions::default()).expect("HTML parses");
    let parser = dom.parser();
    let Some(nodes) = dom.query_selector(first) else {
        return Vec::new();
    };
    let found: Vec<&tl::Node> = nodes.filter_map(|h| h.get(parser)).collect();
    match rest {
        None => found.iter().map(|n| take(n, parser)).collect(),
        Some(rest) => found
            .iter()
            .flat_map(|n| select(&n.inner_html(parser), rest, take))
            .collect(),
    }
}

/// A tile's value: `[data-currency=C] [data-kpi=K] .value`.
fn tile(html: &str, currency: &str, kpi: &str) -> String {
    let values = texts(
        html,
        &format!("div[data-currency={currency}] div[data-kpi={kpi}] .value"),
    );
    values
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no {kpi} tile for {currency}"))
}

/// `1234567.891` → `1,234,567.89`.
fn grouped(amount: &str) -> String {
    let value: f64 = amount.parse().unwrap();
    let text = format!("{:.2}", value.abs());
    let (whole, cents) = text.split_once('.').unwrap();
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{}{out}.{cents}", if value < 0.0 { "-" } else { "" })
}

/// `arq backtest` of one snapshot, as CSV.
fn backtest_csv(day: &str) -> Table {
    Table::parse(&run_ok(&[
        "backtest", "--from", day, "--to", day, "--format", "csv",
    ]))
}

/// The rows of `select` over the Parquet file `path` (as table `t`), as text.
fn parquet_rows(path: &Path, select: &str) -> Vec<Vec<String>> {
    use datafusion::arrow::util::display::array_value_to_string;
    let mut rows = Vec::new();
    for b in &select_parquet(path, select) {
        for r in 0..b.num_rows() {
            rows.push(
                (0..b.num_columns())
                    .map(|c| array_value_to_string(b.column(c), r).unwrap())
                    .collect(),
            );
        }
    }
    rows
}

/// The nightly run for each of `dates` into `dir/nights` (returned).
fn nights(dir: &Path, dates: &[&str]) -> PathBuf {
    let out = dir.join("nights");
    for night in dates {
        run_ok(&[
            "nightly",
            "--quiet",
            "--as-of",
            night,
            "--out",
            out.to_str().unwrap(),
        ]);
    }
    out
}

fn sql_csv(query: &str) -> Table {
    Table::parse(&run_ok(&["sql", "--format", "csv", query]))
}

#[test]
fn the_reports_figures_are_the_sql_figures() {
    let dir = tempfile::tempdir().unwrap();
    let html = report(dir.path(), "r.html", &[]);
    let metrics = sql_csv(
        "SELECT currency, ar_end, dso, best_possible_dso, average_days_delinquent, cei \
         FROM ar_metrics('2026-10-31', '2026-10-31') ORDER BY currency",
    );
    assert!(metrics.rows.len() >= 2);
    for m in metrics.records() {
        let c = m.get("currency");
        assert_eq!(
            tile(&html, c, "total_ar"),
            format!("{c} {}", grouped(m.get("ar_end")))
        );
        assert_eq!(tile(&html, c, "dso"), format!("{:.1} days", m.num("dso")));
        assert_eq!(
            tile(&html, c, "best_possible_dso"),
            format!("{:.1} days", m.num("best_possible_dso"))
        );
        assert_eq!(
            tile(&html, c, "add"),
            format!("{:.1} days", m.num("average_days_delinquent"))
        );
        assert_eq!(tile(&html, c, "cei"), format!("{:.1} %", m.num("cei")));
    }
    // The 90+ share of the USD tile.
    let over_90 = sql_csv(
        "SELECT sum(CASE WHEN days_past_due(due_date, snapshot_date) > 90 THEN open_amount \
         ELSE 0 END) / sum(open_amount) AS share FROM open_items_latest WHERE currency = 'USD'",
    );
    let share = over_90.records().next().unwrap().num("share");
    assert_eq!(
        tile(&html, "USD", "over_90_share"),
        format!("{:.1} %", share * 100.0)
    );

    // The largest overdue USD customer.
    let top = sql_csv(
        "SELECT customer_id, sum(open_amount) AS overdue FROM open_items_latest \
         WHERE due_date < snapshot_date AND currency = 'USD' GROUP BY 1 \
         ORDER BY 2 DESC, 1 LIMIT 1",
    );
    let top = top.records().next().unwrap();
    let cells = texts(&html, "div[data-table=top-overdue-USD] tbody tr td");
    assert_eq!(cells[1], top.get("customer_id"));
    assert_eq!(cells[3], grouped(top.get("overdue")));

    // Every row of the breakdowns by segment and by region: customers with open items,
    // open total and overdue, per currency, as a plain GROUP BY in `arq sql` gives them.
    for dimension in ["segment", "region"] {
        let expected = sql_csv(&format!(
            "SELECT c.{dimension} AS part, o.currency, count(DISTINCT o.customer_id) AS n, \
             sum(o.open_amount) AS total, \
             sum(CASE WHEN o.due_date < o.snapshot_date THEN o.open_amount ELSE 0 END) AS overdue \
             FROM open_items_latest o JOIN customers_latest c ON c.customer_id = o.customer_id \
             GROUP BY 1, 2 ORDER BY 2, 1"
        ));
        let shown = texts(&html, &format!("div[data-table=by-{dimension}] tbody tr"));
        assert!(expected.rows.len() >= 4, "{dimension}: too few rows");
        assert_eq!(shown.len(), expected.rows.len(), "{dimension}: {shown:?}");
        for (row, e) in shown.iter().zip(expected.records()) {
            let c = e.get("currency");
            let start = format!("{}{c}{}", e.get("part"), e.get("n"));
            assert!(row.starts_with(&start), "{row} vs {start}");
            for amount in ["total", "overdue"] {
                let money = format!("{c} {}", grouped(e.get(amount)));
                assert!(row.contains(&money), "{row} lacks {amount} {money}");
            }
        }
    }

    // The roll rate of 31-60 in October, USD.
    let roll = sql_csv(
        "SELECT roll_rate FROM roll_rates('2026-10-31', '2026-10-31') \
         WHERE currency = 'USD' AND from_bucket = '31-60'",
    );
    let rate = roll.records().next().unwrap().num("roll_rate");
    let rows = texts(&html, "figure#roll-rates-USD tbody tr");
    let row = rows
        .iter()
        .find(|r| r.starts_with("31-60"))
        .expect("a 31-60 row");
    assert!(
        row.ends_with(&format!("{:.1} %", rate * 100.0)),
        "{row} vs {rate}"
    );

    // A collector's promises taken and cash collected in October.
    let k1 = sql_csv(
        "SELECT count(*) AS promises FROM activities WHERE collector_id = 'K0001' \
         AND kind = 'promise' AND activity_date > DATE '2026-09-30' \
         AND activity_date <= DATE '2026-10-31'",
    );
    let promises = k1.records().next().unwrap().get("promises").to_string();
    let row = texts(&html, "div[data-table=collectors] tbody tr")
        .into_iter()
        .find(|r| r.starts_with("K0001"))
        .expect("K0001's row");
    assert!(row.contains(&promises), "{row} lacks {promises} promises");
    // Money is never added across currencies: every amount has its currency.
    assert!(!html.contains("Total AR</div>\n        <div class=\"value\">0"));

    // The credit section's exposure by class and over-limit count are `arq limits`'.
    let limits = Table::parse(&run_ok(&["limits", "--format", "csv"]));
    let usd_a: f64 = limits
        .records()
        .filter(|r| r.get("currency") == "USD" && r.get("risk_class") == "A")
        .map(|r| r.num("exposure"))
        .sum();
    let by_class = texts(&html, "div[data-table=by-class] tbody tr");
    let row = by_class
        .iter()
        .find(|r| r.starts_with("USDA"))
        .expect("a USD class A row");
    assert!(
        row.contains(&format!("USD {}", grouped(&format!("{usd_a:.2}")))),
        "{row} vs {usd_a:.2}"
    );
    let over = limits
        .records()
        .filter(|r| r.get("over_limit") == "true")
        .count();
    assert!(
        html.contains(&format!("Over their limit ({over} customers")),
        "{over} over the limit"
    );

    // The model's stored validation figures are the artifact's.
    let artifact: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::util::repo_root().join("data/models/default.json"))
            .unwrap(),
    )
    .unwrap();
    let stored = texts(&html, "div[data-table=model-stored] tbody tr");
    for m in artifact["report"]["validation"].as_array().unwrap() {
        let name = m["model"].as_str().unwrap();
        let auc = m["auc"].as_f64().unwrap();
        let row = stored
            .iter()
            .find(|r| r.starts_with(name) && !r.contains("(training rows)"))
            .unwrap_or_else(|| panic!("no row for {name} in {stored:?}"));
        assert!(row.contains(&format!("{auc:.3}")), "{row} vs AUC {auc:.3}");
    }
    // The champion's AUC on the warehouse's labelled snapshots, recomputed here from the
    // same rows queried with `arq sql`.
    let features: Vec<String> = artifact["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("f.{}", f["name"].as_str().unwrap()))
        .collect();
    let scored = sql_csv(&format!(
        "SELECT risk_score({}) AS pd, l.went_bad FROM customer_features('2025-11-01', \
         '2026-10-31') f JOIN risk_labels('2025-11-01', '2026-10-31') l \
         ON l.customer_id = f.customer_id AND l.snapshot_date = f.snapshot_date \
         WHERE l.went_bad IS NOT NULL AND f.max_dpd < 90",
        features.join(", ")
    ));
    let (mut bads, mut goods) = (Vec::new(), Vec::new());
    for r in scored.records() {
        match r.get("went_bad") {
            "true" => bads.push(r.num("pd")),
            _ => goods.push(r.num("pd")),
        }
    }
    // AUC: the chance that a bad outranks a good (ties count half).
    let mut wins = 0.0;
    for b in &bads {
        for g in &goods {
            wins += if b > g {
                1.0
            } else if b == g {
                0.5
            } else {
                0.0
            };
        }
    }
    let auc = wins / (bads.len() * goods.len()) as f64;
    let evaluated = texts(&html, "div[data-table=model-evaluated] tbody tr");
    assert_eq!(evaluated.len(), 2, "{evaluated:?}");
    assert!(
        evaluated[0].starts_with("champion (PD)") && evaluated[0].contains(&format!("{auc:.3}")),
        "{} vs AUC {auc:.3}",
        evaluated[0]
    );
    let psi = texts(&html, "p[data-psi]");
    assert!(
        psi[0].starts_with("Population stability today: PSI 0."),
        "{psi:?}"
    );

    // The backtest's last replayed snapshot is `arq backtest`'s.
    let backtest = backtest_csv("2026-07-31");
    let usd = backtest
        .records()
        .find(|r| r.get("currency") == "USD")
        .expect("a USD row");
    let rows = texts(&html, "figure#backtest-USD tbody tr");
    let row = rows
        .iter()
        .find(|r| r.starts_with("2026-07-31"))
        .unwrap_or_else(|| panic!("no 2026-07-31 in {rows:?}"));
    let html_rows = texts(&html, "figure#backtest-USD tbody tr td");
    let at = html_rows.iter().position(|c| c == "2026-07-31").unwrap();
    let shown: f64 = html_rows[at + 3].trim_end_matches(" %").parse().unwrap();
    assert!(
        (shown - usd.num("arq_top20") * 100.0).abs() <= 0.051,
        "{row}: {shown} vs {}",
        usd.num("arq_top20")
    );

    // The same inputs give the same bytes.
    let again = report(dir.path(), "again.html", &[]);
    assert!(html == again, "a rerun changed the report");
}

/// The browser the tests drive: `ARQ_BROWSER`, else Chromium's headless shell or
/// Chromium on the PATH. `.ci/run` installs `chromium-headless-shell` when none is there.
fn browser() -> PathBuf {
    if let Some(b) = std::env::var_os("ARQ_BROWSER") {
        return PathBuf::from(b);
    }
    for name in ["chromium-headless-shell", "chromium", "google-chrome"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "no browser for the report test: install Debian's chromium-headless-shell \
         (.ci/run does) or set ARQ_BROWSER"
    );
}

fn headless(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(browser())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,3000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        .output()
        .expect("the browser runs")
}

#[test]
fn a_browser_renders_every_section_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let html = report(dir.path(), "r.html", &[]);
    let url = format!("file://{}", dir.path().join("r.html").display());
    let out = headless(dir.path(), &["--dump-dom", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8(out.stdout).unwrap();
    for section in [
        "section id=\"portfolio\"",
        "section id=\"collectors\"",
        "section id=\"model\"",
        "section id=\"credit\"",
    ] {
        assert!(dom.contains(section), "{section} not rendered");
    }
    let charts = texts(&html, "figure.chart");
    assert!(charts.len() >= 10, "{} charts", charts.len());
    // Every chart in the file is in the rendered page, drawn.
    let dom_svgs = dom.matches("<svg").count();
    assert_eq!(dom_svgs, html.matches("<svg").count());
    assert!(dom_svgs >= 10);
    let visible = texts(&dom, "body").join(" ");
    for bad in ["NaN", "undefined", "inf "] {
        assert!(!visible.contains(bad), "`{bad}` in the rendered text");
    }
    let png = dir.path().join("r.png");
    let shot = headless(
        dir.path(),
        &[&format!("--screenshot={}", png.display()), &url],
    );
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    // A blank 1200×3000 page compresses to a few kilobytes; charts and tables do not.
    let bytes = std::fs::metadata(&png).unwrap().len();
    assert!(
        bytes > 100_000,
        "the screenshot looks blank ({bytes} bytes)"
    );
}

#[test]
fn a_thin_warehouse_gives_notes_not_broken_charts() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    generate_small(&wh, 40, 1, 3);
    let html = report(
        dir.path(),
        "one.html",
        &["--warehouse", wh.to_str().unwrap()],
    );
    assert!(html.contains("Not enough data: fewer than two monthly snapshots."));
    assert!(html.contains("Not enough data: fewer than two months with credit sales."));
    assert!(html.contains(
        "Not enough data: the warehouse has one snapshot, so there is no month to review."
    ));
    assert!(html.contains("Not enough data: no previous snapshot to compare classes with."));
    assert!(html.contains(
        "Not enough data: no snapshot in these months whose following 90 days are in the \
         warehouse."
    ));
    assert!(!html.contains("NaN") && !html.contains("inf"));
}

#[test]
fn hostile_names_are_escaped_and_intact() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    generate_small(&wh, 60, 3, 5);
    let snapshots: Vec<PathBuf> = std::fs::read_dir(wh.join("customers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let hostile = "<script>alert(\"x\")</script> & O'Brien 😀 שלום";
    for snapshot in snapshots {
        let relative = snapshot
            .join("part-00000.parquet")
            .strip_prefix(&wh)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        rewrite(
            &wh,
            &relative,
            &format!(
                "SELECT customer_id, '{}' || customer_id AS name, segment, region, currency, \
                 credit_limit, payment_terms_days, collector_id, customer_since, high_profile, \
                 fraud_suspected, contact_name, contact_phone, contact_email, \
                 last_credit_review FROM t",
                hostile.replace('\'', "''")
            ),
        );
    }
    let html = report(dir.path(), "r.html", &["--warehouse", wh.to_str().unwrap()]);
    assert!(!html.contains("<script>"), "unescaped markup");
    assert!(html.contains("&lt;script&gt;"), "the name is missing");
    // Read back by a parser and its entities decoded, a name is the text written.
    let decoded: Vec<String> = texts(&html, "td")
        .iter()
        .map(|t| {
            t.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#x27;", "'")
                .replace("&#x2f;", "/")
                .replace("&amp;", "&")
        })
        .collect();
    assert!(
        decoded
            .iter()
            .any(|n| n.starts_with(hostile) && n.len() > hostile.len()),
        "no intact name in {decoded:?}"
    );
}

#[test]
fn the_nightly_writes_the_report_of_the_night() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(&["nightly", "--quiet", "--out", dir.path().to_str().unwrap()]);
    let night = dir.path().join("2026-10-31");
    let html = std::fs::read_to_string(night.join("report.html")).unwrap();
    for section in ["portfolio", "collectors", "model", "credit"] {
        assert!(
            html.contains(&format!("<section id=\"{section}\">")),
            "{section}"
        );
    }
    let manifest = std::fs::read_to_string(night.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"file\": \"report.html\""), "{manifest}");
    // Each collector's nights over capacity count tonight.
    let rows = texts(&html, "div[data-table=collectors] tbody tr");
    assert!(
        rows.iter()
            .all(|r| r.ends_with(" of 1") || r.ends_with("of 1")),
        "{rows:?}"
    );
    // No earlier night scored the labelled snapshots: the model section says so and how
    // to fill it, instead of scoring them in the nightly.
    let heading = texts(&html, "section#model h3");
    assert!(
        heading
            .iter()
            .any(|h| h.contains("labelled snapshots left out")),
        "{heading:?}"
    );
    assert!(html.contains("run `arq nightly --as-of DATE` once for past snapshots"));
    // The night's report is `arq report --nights OUT` over the same inputs, byte for byte.
    let out = dir.path().to_str().unwrap();
    let alone = report(
        dir.path(),
        "alone.html",
        &["--warehouse", "data/demo", "--nights", out],
    );
    assert!(
        alone == html,
        "the nightly's report differs from arq report's"
    );
}

/// The model section over the nights' stored scores is the section scored from scratch:
/// three nights of labelled snapshots, then the same report with and without `--nights`.
/// A night scored by another model does not count (its snapshot is left out).
#[test]
fn the_model_section_reads_the_nights_scores_and_gives_the_same_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nights");
    let out = out.to_str().unwrap();
    for night in ["2026-05-31", "2026-06-30", "2026-07-31"] {
        run_ok(&["nightly", "--quiet", "--as-of", night, "--out", out]);
    }
    let window = ["--as-of", "2026-07-31", "--months", "3"];
    let scored = report(dir.path(), "scored.html", &window);
    let mut with_nights = window.to_vec();
    with_nights.extend(["--nights", out]);
    let read = report(dir.path(), "read.html", &with_nights);
    // The section's bytes as written (a parser would reorder the SVG's attributes).
    let model = |html: &str| -> String {
        let start = html
            .find("<section id=\"model\">")
            .expect("a model section");
        let end = start + html[start..].find("</section>").expect("the section ends");
        html[start..end].to_string()
    };
    assert!(model(&scored).contains("figure"), "{}", model(&scored));
    assert!(
        model(&scored) == model(&read),
        "the model section differs between stored and computed scores"
    );
    // Three labelled snapshots (their 90 days are in the warehouse), none left out.
    let rows_of = |html: &str| -> u64 {
        let heading = texts(html, "section#model h3");
        let h = heading
            .iter()
            .find(|h| h.contains("customer-snapshots"))
            .unwrap_or_else(|| panic!("{heading:?}"));
        let number = h.split('(').nth(1).unwrap().split(' ').next().unwrap();
        number.replace(',', "").parse().unwrap()
    };
    assert!(rows_of(&read) > 0);
    assert!(!read.contains("left out"));
    assert!(scored.contains("id=\"roc\""));

    // A night whose manifest names another model is not read: its snapshot is left out.
    let manifest = Path::new(out).join("2026-05-31").join("manifest.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    json["model"]["fingerprint"] = "another model".into();
    std::fs::write(&manifest, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let other = report(dir.path(), "other.html", &with_nights);
    let heading = texts(&other, "section#model h3");
    assert!(
        heading
            .iter()
            .any(|h| h.contains("1 labelled snapshot left out: no night scored it")),
        "{heading:?}"
    );
    assert!(rows_of(&other) < rows_of(&read));
}

/// Nights whose report reads three labelled snapshots scored by the earlier nights (the
/// 90 days after 2026-05-31, -06-30 and -07-31 are in the demo by 2026-10-31).
const LABELLED_NIGHTS: [&str; 4] = ["2026-05-31", "2026-06-30", "2026-07-31", "2026-10-31"];

/// A night keeps the backtest rows its report showed (`backtest.*`, `arq backtest`'s
/// figures); later reports read them instead of replaying the queues, and only when the
/// night used the same model and policy.
#[test]
fn the_nights_keep_the_backtest_rows_they_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = nights(dir.path(), &LABELLED_NIGHTS);
    let out = out_dir.to_str().unwrap();
    let night = out_dir.join("2026-10-31");
    let kept = std::fs::read_to_string(night.join("backtest.csv")).unwrap();
    let kept = Table::parse(&kept);
    let replayed = Table::parse(&run_ok(&[
        "backtest",
        "--from",
        "2026-05-31",
        "--to",
        "2026-07-31",
        "--format",
        "csv",
    ]));
    assert_eq!(kept.rows.len(), 12, "{:?}", kept.rows);
    assert_eq!(kept.rows.len(), replayed.rows.len());
    for (k, r) in kept.records().zip(replayed.records()) {
        for column in [
            "snapshot_date",
            "currency",
            "ranked",
            "newly_bad",
            "newly_bad_balance",
        ] {
            assert_eq!(k.get(column), r.get(column), "{column}");
        }
        for column in [
            "arq_top10",
            "arq_top20",
            "oldest_first_top20",
            "largest_first_top20",
        ] {
            assert!((k.num(column) - r.num(column)).abs() < 0.00006, "{column}");
        }
    }

    // The report over the nights reads the kept rows: a changed share shows.
    rewrite(
        &night,
        "backtest.parquet",
        "SELECT snapshot_date, currency, seen_in_training, ranked, newly_bad, \
         newly_bad_balance, arq_top10, CAST(0.5 AS DOUBLE) AS arq_top20, oldest_first_top10, \
         oldest_first_top20, largest_first_top10, largest_first_top20 FROM t",
    );
    let read = report(dir.path(), "read.html", &["--nights", out]);
    let shown = texts(&read, "figure#backtest-USD tbody tr");
    assert!(
        shown.iter().all(|r| r.contains("50.0 %")),
        "the kept rows were not read: {shown:?}"
    );
    // Under another policy (another fingerprint) they do not count: replayed again.
    let policy = dir.path().join("policy.toml");
    let text = std::fs::read_to_string("data/policy.toml").unwrap();
    std::fs::write(&policy, format!("{text}\n# a copy\n")).unwrap();
    let other = report(
        dir.path(),
        "other.html",
        &["--nights", out, "--policy", policy.to_str().unwrap()],
    );
    let shown = texts(&other, "figure#backtest-USD tbody tr");
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(!shown.iter().any(|r| r.contains("50.0 %")), "{shown:?}");
}

/// A night keeps the portfolio series of every month of its report's range
/// (`portfolio_facts.json`: per month the `ar_metrics` rows, the aging by bucket, the roll
/// rates, up to the month's last snapshot); a report over the nights reads the months
/// before its own from the newest night — the same page as computing them — and computes
/// only its own month. The first night in a folder computes every month; the nights after
/// it carry the months they read forward unchanged.
#[test]
fn the_nights_keep_their_months_portfolio_series() {
    let dir = tempfile::tempdir().unwrap();
    let months = ["2026-08-31", "2026-09-30", "2026-10-31"];
    let out_dir = nights(dir.path(), &months);
    let out = out_dir.to_str().unwrap();
    let kept = |night: &str| -> serde_json::Value {
        let file = out_dir.join(night).join("portfolio_facts.json");
        serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
    };
    for night in months {
        let facts = kept(night);
        let months = facts["months"].as_array().unwrap();
        // The demo warehouse's snapshots start in 2025-11: every month of the night's
        // 12 from then on, the last its own.
        let names: Vec<&str> = months
            .iter()
            .map(|m| m["month"].as_str().unwrap())
            .collect();
        assert_eq!(names.first(), Some(&"2025-11"), "{names:?}");
        assert_eq!(names.last(), Some(&&night[..7]), "{names:?}");
        let expected = match night {
            "2026-08-31" => 10,
            "2026-09-30" => 11,
            _ => 12,
        };
        assert_eq!(names.len(), expected, "{names:?}");
        for month in months {
            let name = month["month"].as_str().unwrap();
            let last = month["last_snapshot"].as_str().unwrap();
            assert!(last.starts_with(name), "{month}");
            for part in ["metrics", "aging", "rolls"] {
                let rows = month[part].as_array().unwrap();
                assert!(!rows.is_empty() || part == "rolls", "{part}: {month}");
                let date = if part == "aging" {
                    "snapshot_date"
                } else {
                    "period_end"
                };
                assert!(
                    rows.iter()
                        .all(|r| r[date].as_str().unwrap().starts_with(name)),
                    "{part}: {month}"
                );
            }
        }
        let manifest = std::fs::read_to_string(out_dir.join(night).join("manifest.json")).unwrap();
        assert!(manifest.contains("\"portfolio_facts.json\""), "{manifest}");
    }
    // The second night carried the first night's months forward as they were.
    let (august, september) = (kept("2026-08-31"), kept("2026-09-30"));
    for month in august["months"].as_array().unwrap() {
        assert!(
            september["months"].as_array().unwrap().contains(month),
            "{month} not carried forward"
        );
    }

    let args = ["--sections", "portfolio", "--months", "3"];
    let computed = report(dir.path(), "computed.html", &args);
    let with_nights = [&args[..], &["--nights", out]].concat();
    let read = report(dir.path(), "read.html", &with_nights);
    assert_eq!(
        read, computed,
        "the nights' series differ from the computed ones"
    );

    // They are read, not computed again: a changed figure of September in the night of
    // September's last snapshot shows.
    let set_dso = |night: &str, dso: f64| {
        let file = out_dir.join(night).join("portfolio_facts.json");
        let mut facts = kept(night);
        for month in facts["months"].as_array_mut().unwrap() {
            if month["month"] == "2026-09" {
                for row in month["metrics"].as_array_mut().unwrap() {
                    if row["currency"] == "USD" {
                        row["dso"] = serde_json::json!(dso);
                    }
                }
            }
        }
        std::fs::write(&file, serde_json::to_vec_pretty(&facts).unwrap()).unwrap();
    };
    let dso_rows = |name: &str| {
        let html = report(dir.path(), name, &with_nights);
        texts(&html, "figure#dso-USD tbody tr")
    };
    set_dso("2026-09-30", 123.4);
    set_dso("2026-10-31", 432.1);
    let rows = dso_rows("own.html");
    assert!(
        rows.iter().any(|r| r.contains("123.4")) && !rows.iter().any(|r| r.contains("432.1")),
        "September's DSO was not read from its own night: {rows:?}"
    );
    // Without September's own file, the newest night's carried copy is read.
    std::fs::remove_file(out_dir.join("2026-09-30").join("portfolio_facts.json")).unwrap();
    let rows = dso_rows("carried.html");
    assert!(
        rows.iter().any(|r| r.contains("432.1")),
        "September's DSO was not read from the newest night: {rows:?}"
    );
    // A month neither its night nor the newest night holds is computed (and so is every
    // month after it): August removed from both, the page is the computed one again.
    std::fs::remove_file(out_dir.join("2026-08-31").join("portfolio_facts.json")).unwrap();
    let newest = out_dir.join("2026-10-31").join("portfolio_facts.json");
    let mut facts = kept("2026-10-31");
    facts["months"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["month"] != "2026-08");
    std::fs::write(&newest, serde_json::to_vec_pretty(&facts).unwrap()).unwrap();
    let recomputed = report(dir.path(), "recomputed.html", &with_nights);
    assert_eq!(recomputed, computed);
}

/// A night keeps the 90-day outcomes its report read (`outcomes.parquet`: `risk_labels`'
/// `went_bad` of every customer of each labelled snapshot); later reports read them
/// instead of labelling those snapshots again.
#[test]
fn the_nights_keep_the_outcomes_they_read() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = nights(dir.path(), &LABELLED_NIGHTS);
    let out = out_dir.to_str().unwrap();
    // The night of 2026-10-31 read the labels of the three earlier nights' snapshots
    // (their 90 days are in the warehouse): they are `risk_labels`' own.
    let night = out_dir.join("2026-10-31");
    let manifest = std::fs::read_to_string(night.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"outcomes.parquet\""), "{manifest}");
    let kept = parquet_rows(
        &night.join("outcomes.parquet"),
        "SELECT CAST(snapshot_date AS VARCHAR), customer_id, CAST(went_bad AS VARCHAR) \
         FROM t ORDER BY 1, 2",
    );
    let labels = sql_csv(
        "SELECT CAST(snapshot_date AS VARCHAR) AS day, customer_id, \
         CAST(went_bad AS VARCHAR) AS went_bad \
         FROM risk_labels('2026-05-31', '2026-07-31') \
         WHERE snapshot_date IN ('2026-05-31', '2026-06-30', '2026-07-31') ORDER BY 1, 2",
    );
    assert_eq!(kept.len(), labels.rows.len());
    assert!(kept.len() > 3 * 1000, "{}", kept.len());
    assert!(kept.iter().any(|r| r[2] == "true") && kept.iter().any(|r| r[2] == "false"));
    assert_eq!(kept, labels.rows, "the kept outcomes are not risk_labels'");

    // The report over the nights reads them: with every kept outcome good, no bads show.
    let roc = |name: &str| texts(&report(dir.path(), name, &["--nights", out]), "figure#roc");
    let before = roc("before.html");
    assert!(
        before.len() == 1 && !before[0].contains("Not enough data"),
        "{before:?}"
    );
    rewrite(
        &night,
        "outcomes.parquet",
        "SELECT snapshot_date, customer_id, false AS went_bad FROM t",
    );
    let after = roc("after.html");
    assert!(
        after.len() == 1 && after[0].contains("Not enough data"),
        "the kept outcomes were not read: {after:?}"
    );
}
