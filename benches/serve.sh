#!/usr/bin/env bash
# The aging query through `arq serve`, with 1, 8 and 32 concurrent clients (pgbench,
# Debian's postgresql-client), against the same query in one `arq shell` session
# (`\timing`, the same process kind without the wire protocol).
#
#   bash benches/serve.sh [CUSTOMERS] [SECONDS]
#
# Generates a warehouse of N customers (default 1,000,000; 12 monthly snapshots, seed 1)
# once into target/bench-data/wh-N (kept between runs), then prints one table row per
# setting: runs, p50 and p99 latency in ms. Each setting runs SECONDS (default 30); the
# first statement of each is a warm-up and is not counted. Release build (ARQ_BIN=path
# runs another binary, for a quick check of the script).
set -euo pipefail
cd "$(dirname "$0")/.."
customers="${1:-1000000}"
seconds="${2:-30}"
warehouse="target/bench-data/wh-$customers"
arq="${ARQ_BIN:-target/release/arq}"
port=55432
[ -n "${ARQ_BIN:-}" ] || cargo build --release --quiet
if [ ! -d "$warehouse" ]; then
    $arq generate --out "$warehouse" --customers "$customers" --months 12 --seed 1 --quiet
fi
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

query="SELECT aging_bucket(due_date, snapshot_date) AS bucket, currency, sum(open_amount) AS open FROM open_items_latest GROUP BY bucket, currency ORDER BY currency, aging_bucket_rank(bucket);"
echo "$query" > "$work/aging.sql"

percentiles() { # label file-of-ms
    python3 - "$1" "$2" <<'EOF'
import sys
label, path = sys.argv[1], sys.argv[2]
ms = sorted(float(x) for x in open(path) if x.strip())
def pct(p):
    return ms[min(len(ms) - 1, int(round(p / 100 * (len(ms) - 1))))]
print(f"| {label} | {len(ms)} | {pct(50):.1f} | {pct(99):.1f} |")
EOF
}

echo "| setting | runs | p50 ms | p99 ms |"
echo "|---|---|---|---|"

# arq shell: the query back to back in one session for SECONDS.
{ echo '\timing'; echo "$query"; echo "$query"; } > "$work/probe.sql"
once=$($arq --warehouse "$warehouse" shell -f "$work/probe.sql" 2>/dev/null \
    | sed -n 's/^Time: \(.*\) ms$/\1/p' | tail -1)
n=$(python3 -c "print(max(10, int($seconds * 1000 / max($once, 1))))")
{ echo '\timing'; for _ in $(seq $((n + 1))); do echo "$query"; done; } > "$work/shell.sql"
$arq --warehouse "$warehouse" shell -f "$work/shell.sql" 2>/dev/null \
    | sed -n 's/^Time: \(.*\) ms$/\1/p' | tail -n +2 > "$work/shell.ms"
percentiles "arq shell (in process), 1 session" "$work/shell.ms"

$arq --warehouse "$warehouse" serve --trust-local --listen "127.0.0.1:$port" 2> "$work/serve.log" &
server=$!
for _ in $(seq 600); do
    grep -q '"event":"listening"' "$work/serve.log" && break
    sleep 0.1
done
grep -q '"event":"listening"' "$work/serve.log" || { cat "$work/serve.log"; exit 1; }

for setting in "simple 1" "extended 1" "simple 8" "simple 32"; do
    set -- $setting
    mode=$1 clients=$2
    threads=$(( clients < 2 ? clients : 2 ))
    rm -f "$work"/pgbench_log.*
    # Warm-up: every connection's first statement copies the session.
    pgbench -n -h 127.0.0.1 -p "$port" -U bench -M "$mode" -c "$clients" -j "$threads" \
        -t 1 -f "$work/aging.sql" arq > /dev/null 2>&1
    (cd "$work" && pgbench -n -h 127.0.0.1 -p "$port" -U bench -M "$mode" -c "$clients" \
        -j "$threads" -T "$seconds" -f "$work/aging.sql" -l arq > "$work/pgbench.out" 2>&1) \
        || { cat "$work/pgbench.out"; exit 1; }
    cat "$work"/pgbench_log.* | awk '{ print $3 / 1000 }' > "$work/serve.ms"
    percentiles "arq serve, $mode protocol, $clients client(s)" "$work/serve.ms"
done
errors=$(grep -c '"sqlstate"' "$work/serve.log" || true)
echo
echo "statements that failed in the server's log: $errors"
