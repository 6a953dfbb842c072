#!/usr/bin/env bash
# The nightly job against what a data team would build instead: DuckDB computing the same
# features over the same Parquet files, numpy scoring, the queue ranking
# (../shared/peers/nightly_duckdb.py), side by side (issue 17).
#
#   bash benches/nightly_vs_duckdb.sh [CUSTOMERS] [ROUNDS]     # default 1000000, 3
#
# 1. Generates target/bench-data/wh-N once (12 monthly snapshots, seed 1), installs DuckDB,
#    pyarrow and numpy into target/bench-venv on first use.
# 2. Checks the peer still computes arq's features: the peer's `--features-only
#    --features-out` against arq's `customer_features()` of the newest snapshot, every
#    column of every customer (doubles to 1e-9 relative). A difference stops the script:
#    the peer ports models/sql/features.sql and must be kept in step with it.
# 3. Runs arq's nightly and the peer alternately ROUNDS times, each under
#    /usr/bin/time -v, and prints each run's wall time and peak RSS, the medians and the
#    ratios arq / peer (goal: <= 0.5, peak RSS <= 2 GB). arq runs two kinds of night of
#    the newest snapshot each round:
#    - `arq-steady`: in a folder that holds the night before (run once, before the rounds,
#      and reported): the previous snapshot's scores and the report's earlier months are
#      read from it, as on every night of a deployment after its first;
#    - `arq-first`: in a folder with no night yet (the invoice settlement table aside):
#      every snapshot it needs scored, every month of the report computed.
#
# The peer scores with the artifact's logistic coefficients; when the artifact's champion
# is the binned scorecard, arq's PDs differ from the peer's, not its work: the comparison
# is of the same stages (features, scoring, ranking, writing). ARQ_BIN=path runs another
# arq binary.
set -euo pipefail
cd "$(dirname "$0")/.."
customers="${1:-1000000}"
rounds="${2:-3}"
warehouse="target/bench-data/wh-$customers"
arq="${ARQ_BIN:-target/release/arq}"
venv=target/bench-venv
[ -n "${ARQ_BIN:-}" ] || cargo build --release --quiet
if [ ! -d "$warehouse" ]; then
    $arq generate --out "$warehouse" --customers "$customers" --months 12 --seed 1 --quiet
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import duckdb, pyarrow, numpy" 2>/dev/null \
    || "$venv/bin/pip" install --quiet duckdb pyarrow numpy
peer=../shared/peers/nightly_duckdb.py
work=target/bench-data/nightly-vs-duckdb-$customers
rm -rf "$work" && mkdir -p "$work"

latest=$(ls "$warehouse/customers" | sed -n 's/^snapshot_date=//p' | sort | tail -1)
echo "warehouse $warehouse, newest snapshot $latest" >&2
"$venv/bin/python" "$peer" -w "$warehouse" --features-only --features-out "$work/peer_features.parquet" >&2
$arq -w "$warehouse" sql -o "$work/arq_features.parquet" \
    "SELECT * FROM customer_features('$latest') ORDER BY customer_id"
"$venv/bin/python" - "$work/arq_features.parquet" "$work/peer_features.parquet" <<'EOF'
import math, sys
import pyarrow.parquet as pq
a = pq.read_table(sys.argv[1]).sort_by("customer_id")
b = pq.read_table(sys.argv[2]).sort_by("customer_id")
if a.num_rows != b.num_rows:
    sys.exit(f"features differ: {a.num_rows} rows in arq, {b.num_rows} in the peer")
for name in a.column_names:
    if name == "snapshot_date":
        continue
    if name not in b.column_names:
        sys.exit(f"features differ: the peer has no column {name}")
    x, y = a.column(name).to_pylist(), b.column(name).to_pylist()
    for i, (p, q) in enumerate(zip(x, y)):
        same = p == q or (isinstance(p, float) and isinstance(q, float)
                          and (math.isnan(p) and math.isnan(q)
                               or abs(p - q) <= 1e-9 * max(abs(p), abs(q))))
        if not same:
            sys.exit(f"features differ: {name} of {a.column('customer_id')[i]}: arq {p}, peer {q}")
print(f"features equal: {a.num_rows} customers x {len(a.column_names) - 2} features", file=sys.stderr)
EOF

measure() { # label, command...
    local label=$1; shift
    /usr/bin/time -v "$@" > /dev/null 2> "$work/time.txt" || { tail -20 "$work/time.txt"; exit 1; }
    local wall rss
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time.txt" \
        | awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }')
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
    echo "$label $wall $rss" >> "$work/runs.txt"
    echo "$label: ${wall} s, $(awk "BEGIN { printf \"%.2f\", $rss / 1048576 }") GB" >&2
}

# arq keeps its invoice settlement table between nights (OUT/_settlement): built once
# here, timed on its own, then every night finds it up to date, as the nights after the
# first are (the peer keeps nothing between runs). The night of the previous snapshot is
# run once in the steady folder (timed: it is a first night of that snapshot).
measure settle $arq -w "$warehouse" settle --out "$work/arq-out" --rebuild
previous=$(ls "$warehouse/customers" | sed -n 's/^snapshot_date=//p' | sort | tail -2 | head -1)
measure night-before $arq -w "$warehouse" nightly --quiet --as-of "$previous" --out "$work/arq-out"
mkdir -p "$work/arq-first" && cp -a "$work/arq-out/_settlement" "$work/arq-first/"
for r in $(seq "$rounds"); do
    rm -rf "$work/arq-out/$latest" "$work/arq-first"/20* "$work/peer-out"
    measure arq-steady $arq -w "$warehouse" nightly --quiet --out "$work/arq-out"
    measure peer "$venv/bin/python" "$peer" -w "$warehouse" --out "$work/peer-out"
    measure arq-first $arq -w "$warehouse" nightly --quiet --out "$work/arq-first"
done
python3 - "$work/runs.txt" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, wall, rss = line.split()
    runs.setdefault(label, []).append((float(wall), int(rss) / 1048576))
print("| engine | runs (s) | median s | peak RSS GB (max) |")
print("|---|---|---|---|")
for label in ("arq-steady", "arq-first", "peer"):
    w = [x for x, _ in runs[label]]
    print(f"| {label} | {', '.join(f'{x:.1f}' for x in w)} | {statistics.median(w):.1f} | "
          f"{max(g for _, g in runs[label]):.2f} |")
for label, what in (("settle", "arq settle --rebuild"),
                    ("night-before", "arq nightly of the previous snapshot")):
    (w, g), = runs[label]
    print(f"\n{what} (once, before the rounds): {w:.1f} s, {g:.2f} GB")
p = statistics.median(x for x, _ in runs["peer"])
for label in ("arq-steady", "arq-first"):
    a = statistics.median(x for x, _ in runs[label])
    print(f"\n{label} / peer: {a / p:.2f} (goal <= 0.5)")
EOF
