#!/usr/bin/env python3
"""The analyst's queries: arq against DuckDB on the same Parquet files (issue 17).

    python3 benches/analyst_vs_duckdb.py [CUSTOMERS] [ROUNDS]    # default 1000000, 5

Generates a warehouse of CUSTOMERS customers (12 monthly snapshots, seed 1) once into
target/bench-data/wh-N (kept between runs), installs DuckDB from PyPI into
target/bench-venv on first use, then:

1. runs every query once in each engine and checks the results are equal (rows compared
   as sorted multisets; decimals exactly, doubles to 1e-9 relative, dates as dates): a
   query whose results differ is reported and not timed;
2. times the queries in ROUNDS rounds, alternating the engines round by round: arq in one
   `arq shell` session per round (`\\timing`: the statement's time in the process, its
   result printed), DuckDB in one connection per round (`sql(...).to_arrow_table()`);
3. prints per query the median of each engine, the ratio arq / DuckDB, and the geometric
   mean of the ratios. The goal (issue 17): geometric mean <= 0.8, no query above 1.2.

The SQL text is the same for both engines: DuckDB gets views of the warehouse's tables
(hive-partitioned snapshot tables, `*_latest` and `*_previous` views of the newest and
the previous snapshot, like arq's) and macros for arq's `days_past_due`, `aging_bucket`
and `aging_bucket_rank` (the peer's definitions, ../shared/peers/nightly_duckdb.py).
Threads: each engine's default (every core). ARQ_BIN=path runs another arq binary.
"""
import csv
import datetime as dt
import io
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys
from decimal import Decimal

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = ROOT / "target" / "bench-venv"

QUERIES = {
    "aging_by_segment": """
        SELECT c.segment, o.currency, aging_bucket(o.due_date, o.snapshot_date) AS bucket,
               count(*) AS items, sum(o.open_amount) AS open
        FROM open_items_latest o JOIN customers_latest c ON c.customer_id = o.customer_id
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
    "aging_newest_by_subquery": """
        SELECT c.segment, o.currency, aging_bucket(o.due_date, o.snapshot_date) AS bucket,
               count(*) AS items, sum(o.open_amount) AS open
        FROM open_items o JOIN customers c
          ON c.customer_id = o.customer_id AND c.snapshot_date = o.snapshot_date
        WHERE o.snapshot_date = (SELECT max(snapshot_date) FROM open_items)
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
    "aging_by_collector": """
        SELECT c.collector_id, o.currency,
               sum(o.open_amount) FILTER (WHERE o.due_date < o.snapshot_date) AS overdue,
               sum(o.open_amount) AS open, count(DISTINCT o.customer_id) AS customers
        FROM open_items_latest o JOIN customers_latest c ON c.customer_id = o.customer_id
        GROUP BY 1, 2 ORDER BY 1, 2""",
    "top_overdue_customers": """
        SELECT o.customer_id, c.name, sum(o.open_amount) AS overdue,
               max(days_past_due(o.due_date, o.snapshot_date)) AS max_dpd
        FROM open_items_latest o JOIN customers_latest c ON c.customer_id = o.customer_id
        WHERE o.due_date < o.snapshot_date AND o.currency = 'EUR'
        GROUP BY 1, 2 ORDER BY overdue DESC, o.customer_id LIMIT 20""",
    "overdue_month_against_month": """
        WITH n AS (SELECT currency, segment, sum(o.open_amount) AS overdue
                   FROM open_items_latest o JOIN customers_latest c USING (customer_id, currency)
                   WHERE o.due_date < o.snapshot_date GROUP BY 1, 2),
             p AS (SELECT currency, segment, sum(o.open_amount) AS overdue
                   FROM open_items_previous o JOIN customers_previous c USING (customer_id, currency)
                   WHERE o.due_date < o.snapshot_date GROUP BY 1, 2)
        SELECT n.currency, n.segment, n.overdue, p.overdue AS previous, n.overdue - p.overdue AS change
        FROM n LEFT JOIN p ON p.currency = n.currency AND p.segment = n.segment
        ORDER BY 1, 2""",
    "dso_trend": """
        WITH ar AS (SELECT snapshot_date, currency, sum(open_amount) AS ar
                    FROM open_items GROUP BY 1, 2),
             sales AS (SELECT CAST(date_trunc('month', invoice_date) AS DATE) AS month, currency,
                              sum(amount) AS sales
                       FROM invoices GROUP BY 1, 2)
        SELECT ar.snapshot_date, ar.currency, ar.ar, s.sales,
               round(CAST(ar.ar AS DOUBLE) / CAST(s.sales AS DOUBLE) * 30, 2) AS dso
        FROM ar JOIN sales s
          ON s.currency = ar.currency
         AND s.month = CAST(date_trunc('month', ar.snapshot_date) AS DATE)
        ORDER BY 1, 2""",
    "roll_rates": """
        WITH p AS (SELECT customer_id, max(days_past_due(due_date, snapshot_date)) AS dpd
                   FROM open_items_previous GROUP BY 1),
             n AS (SELECT customer_id, max(days_past_due(due_date, snapshot_date)) AS dpd
                   FROM open_items_latest GROUP BY 1)
        SELECT CASE WHEN p.dpd = 0 THEN 'current' WHEN p.dpd <= 30 THEN '1-30'
                    WHEN p.dpd <= 60 THEN '31-60' WHEN p.dpd <= 90 THEN '61-90' ELSE '90+' END AS from_bucket,
               CASE WHEN n.dpd = 0 THEN 'current' WHEN n.dpd <= 30 THEN '1-30'
                    WHEN n.dpd <= 60 THEN '31-60' WHEN n.dpd <= 90 THEN '61-90' ELSE '90+' END AS to_bucket,
               count(*) AS customers
        FROM p JOIN n ON n.customer_id = p.customer_id
        GROUP BY 1, 2 ORDER BY 1, 2""",
    "over_limit_customers": """
        SELECT c.currency, count(*) AS customers, sum(e.exposure - c.credit_limit) AS over_limit
        FROM customers_latest c
        JOIN (SELECT customer_id, sum(open_amount) AS exposure FROM open_items_latest GROUP BY 1) e
          ON e.customer_id = c.customer_id
        WHERE e.exposure > c.credit_limit
        GROUP BY 1 ORDER BY 1""",
    "customer_history": """
        SELECT snapshot_date, count(*) AS items, sum(open_amount) AS open,
               max(days_past_due(due_date, snapshot_date)) AS max_dpd
        FROM open_items WHERE customer_id = 'C0500000'
        GROUP BY 1 ORDER BY 1""",
    "customer_payments": """
        SELECT payment_id, invoice_id, payment_date, amount
        FROM payments WHERE customer_id = 'C0500000'
        ORDER BY payment_date, payment_id""",
    "cash_last_quarter": """
        SELECT i.currency, CAST(date_trunc('month', p.payment_date) AS DATE) AS month,
               sum(p.amount) AS cash, count(*) AS payments
        FROM payments p JOIN invoices i ON i.invoice_id = p.invoice_id
        WHERE p.payment_date > (SELECT max(snapshot_date) FROM open_items) - INTERVAL '91 days'
        GROUP BY 1, 2 ORDER BY 1, 2""",
    "promises_by_collector": """
        SELECT collector_id, count(*) AS promises, count(DISTINCT customer_id) AS customers
        FROM activities
        WHERE kind = 'promise'
          AND activity_date > (SELECT max(snapshot_date) FROM open_items) - INTERVAL '91 days'
        GROUP BY 1 ORDER BY 1""",
    "disputed_by_bucket": """
        SELECT currency, aging_bucket(due_date, snapshot_date) AS bucket,
               count(*) AS items, sum(open_amount) AS open
        FROM open_items_latest WHERE disputed
        GROUP BY 1, 2 ORDER BY 1, 2""",
    "customers_over_time": """
        SELECT snapshot_date, segment, count(*) AS customers,
               sum(CASE WHEN high_profile THEN 1 ELSE 0 END) AS high_profile
        FROM customers GROUP BY 1, 2 ORDER BY 1, 2""",
}

RANK_MACRO = """
CREATE OR REPLACE MACRO aging_bucket_rank(bucket) AS
    CASE bucket WHEN 'current' THEN 0 WHEN '1-30' THEN 1 WHEN '31-60' THEN 2
                WHEN '61-90' THEN 3 WHEN '91-120' THEN 4 WHEN '121+' THEN 5 END;
"""


def venv_python():
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import duckdb, pyarrow"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "duckdb", "pyarrow"], check=True)
    return python


def main():
    if os.environ.get("ARQ_BENCH_CHILD"):
        return duckdb_child()
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    python = venv_python()
    arq = os.environ.get("ARQ_BIN")
    if not arq:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "arq"], cwd=ROOT, check=True)
        arq = str(ROOT / "target" / "release" / "arq")
    warehouse = ROOT / "target" / "bench-data" / f"wh-{customers}"
    if not warehouse.exists():
        subprocess.run([arq, "generate", "--out", str(warehouse), "--customers", str(customers),
                        "--months", "12", "--seed", "1", "--quiet"], check=True)
    # The DuckDB side runs in the virtualenv's Python, as a child that reads commands.
    child = subprocess.Popen([str(python), __file__], env={**os.environ, "ARQ_BENCH_CHILD": "1",
                             "ARQ_BENCH_WAREHOUSE": str(warehouse)},
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def duck(command):
        child.stdin.write(command + "\n")
        child.stdin.flush()
        return child.stdout.readline().rstrip("\n")

    names = list(QUERIES)
    # 1. Equal results.
    equal = []
    for name in names:
        ours = subprocess.run([arq, "--warehouse", str(warehouse), "sql", "--format", "csv", "-c",
                               QUERIES[name]], check=True, capture_output=True, text=True).stdout
        theirs = json.loads(duck(f"csv {name}"))
        same, why = same_rows(ours, theirs)
        print(f"{name:<30} results {'equal' if same else 'DIFFER: ' + why}", file=sys.stderr)
        if same:
            equal.append(name)
    # 2. Alternating rounds.
    times = {n: ([], []) for n in equal}
    for r in range(rounds):
        script = "\\timing\n" + "".join(QUERIES[n].strip() + ";\n" for n in equal)
        script_file = ROOT / "target" / "bench-data" / "analyst.sql"
        script_file.write_text(script)
        out = subprocess.run([arq, "--warehouse", str(warehouse), "shell", "-f", str(script_file)],
                             check=True, capture_output=True, text=True).stdout
        ms = [float(line.split()[1]) for line in out.splitlines() if line.startswith("Time: ")]
        assert len(ms) == len(equal), out[-2000:]
        for n, t in zip(equal, ms):
            times[n][0].append(t)
        for n, t in zip(equal, duck("time " + ",".join(equal)).split(",")):
            times[n][1].append(float(t))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    duck("quit")
    # 3. Medians, ratios, geometric mean.
    print(f"| query | arq ms | DuckDB ms | arq / DuckDB |")
    print("|---|---|---|---|")
    ratios = []
    for n in equal:
        a, d = statistics.median(times[n][0]), statistics.median(times[n][1])
        ratios.append(a / d)
        print(f"| {n} | {a:.1f} | {d:.1f} | {a / d:.2f} |")
    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"\ngeometric mean arq / DuckDB over {len(ratios)} queries: {geo:.2f} "
          f"(goal <= 0.8); above 1.2: {sum(r > 1.2 for r in ratios)}; "
          f"results differ: {len(names) - len(equal)}; rounds: {rounds}")


def same_rows(ours, theirs):
    a = sorted(tuple(norm(v) for v in row) for row in list(csv.reader(io.StringIO(ours)))[1:])
    b = sorted(tuple(norm(v) for v in row) for row in list(csv.reader(io.StringIO(theirs)))[1:])
    if len(a) != len(b):
        return False, f"{len(a)} rows against {len(b)}"
    for x, y in zip(a, b):
        if len(x) != len(y) or not all(close(p, q) for p, q in zip(x, y)):
            return False, f"{x} against {y}"
    return True, ""


def norm(v):
    """A CSV field as a comparable value: '' → None, numbers → Decimal, else the text."""
    if v == "":
        return ("", None)
    try:
        return ("n", Decimal(v))
    except Exception:
        return ("t", v[:10] if len(v) >= 10 and v[4] == "-" and v[7] == "-" else v)


def close(p, q):
    if p[0] != q[0]:
        return False
    if p[0] != "n":
        return p == q
    if p[1] == q[1]:
        return True
    return abs(float(p[1]) - float(q[1])) <= 1e-9 * max(abs(float(p[1])), abs(float(q[1])))


def duckdb_child():
    """Runs in the virtualenv: `csv NAME` prints a query's result as CSV text in one
    JSON string, `time A,B,...` runs the queries in a fresh connection and prints their
    times in ms, `quit` ends."""
    import duckdb
    sys.path.insert(0, str(ROOT.parent / "shared" / "peers"))
    from nightly_duckdb import MACROS

    warehouse = os.environ["ARQ_BENCH_WAREHOUSE"]
    days = sorted(n.split("=", 1)[1] for n in os.listdir(os.path.join(warehouse, "customers"))
                  if n.startswith("snapshot_date="))

    def connect():
        con = duckdb.connect()
        for table in ("customers", "open_items"):
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{warehouse}/{table}/*/*.parquet', "
                        f"hive_partitioning = true, hive_types = {{'snapshot_date': DATE}})")
            con.execute(f"CREATE VIEW {table}_latest AS SELECT * FROM {table} WHERE snapshot_date = DATE '{days[-1]}'")
            con.execute(f"CREATE VIEW {table}_previous AS SELECT * FROM {table} WHERE snapshot_date = DATE '{days[-2]}'")
        for table in ("invoices", "payments", "activities", "collectors", "write_offs"):
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{warehouse}/{table}/*.parquet')")
        con.execute(MACROS)
        con.execute(RANK_MACRO)
        return con

    import time
    con = connect()
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "csv":
            table = con.sql(QUERIES[arg]).to_arrow_table()
            out = io.StringIO()
            w = csv.writer(out, lineterminator="\n")
            w.writerow(table.column_names)
            for row in zip(*(c.to_pylist() for c in table.columns)):
                w.writerow(["" if v is None else (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else
                            ("true" if v is True else "false" if v is False else v)) for v in row])
            print(json.dumps(out.getvalue()), flush=True)
        elif command == "time":
            con = connect()
            ms = []
            for name in arg.split(","):
                started = time.perf_counter()
                con.sql(QUERIES[name]).to_arrow_table()
                ms.append((time.perf_counter() - started) * 1000)
            print(",".join(f"{m:.3f}" for m in ms), flush=True)
        elif command == "quit":
            print("bye", flush=True)
            return


if __name__ == "__main__":
    main()
