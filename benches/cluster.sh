#!/usr/bin/env bash
# Ballista's overhead on one machine: the analyst's aging report and the nightly job
# (its feature stage on the cluster) over a warehouse of N customers, locally and on a
# local cluster of 1 and of 2 executors (`arq cluster`). Every process shares the same
# 2 cores, so this measures what the cluster costs, not a speed-up. Rounds alternate.
# Also prints the aging query's stages with their shuffle rows and bytes (EXPLAIN
# ANALYZE on the cluster).
#
#   cargo build --release
#   ARQ_BIN=target/release/arq bash benches/cluster.sh [CUSTOMERS=1000000] [ROUNDS=2]
#   ONLY=aging (or ONLY=nightly) runs one of the two.
set -euo pipefail
cd "$(dirname "$0")/.."
customers=${1:-1000000}
rounds=${2:-2}
arq=${ARQ_BIN:-target/release/arq}
wh=target/bench-data/wh-$customers
if [ ! -d "$wh" ]; then
  "$arq" generate --customers "$customers" --months 12 --seed 1 --quiet --out "$wh"
fi
wh=$(realpath "$wh")
work=$(mktemp -d /tmp/arq-cluster-bench.XXXXXX)
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap 'stop; rm -rf "$work"' EXIT

aging="SELECT aging_bucket(o.due_date, o.snapshot_date) AS bucket, c.segment, o.currency,
  sum(o.open_amount) AS open FROM open_items_latest o JOIN customers_latest c USING (customer_id)
  GROUP BY 1, 2, 3 ORDER BY 3, 2, 1"

# start N: a scheduler and N executors on free ports; sets $url.
start() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$arq" cluster scheduler --bind "127.0.0.1:$port" 2>"$work/scheduler.log" &
  pids+=($!)
  for i in $(seq "$1"); do
    ARQ_CLUSTER_LOG=info "$arq" cluster executor --scheduler "127.0.0.1:$port" \
      --work-dir "$work/executor-$i" 2>"$work/executor-$i.log" &
    pids+=($!)
  done
  for i in $(seq "$1"); do
    until grep -q "Starting poll work loop" "$work/executor-$i.log" 2>/dev/null; do sleep 0.2; done
  done
  url=df://127.0.0.1:$port
}

# time LABEL CMD...: wall seconds and peak RSS of the client process.
time_it() {
  local label=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" || {
    cat "$work/err"
    exit 1
  }
  read -r secs kb <"$work/time"
  printf '%-28s %7.2f s  client %5d MB\n' "$label" "$secs" "$((kb / 1024))"
}

nightly() { # LABEL [--cluster URL]
  local label=$1
  shift
  rm -rf "$work/out-night"
  time_it "$label" "$arq" -w "$wh" nightly -q --out "$work/out-night" "$@"
  python3 - "$work/out-night" <<'EOF'
import json, sys, glob
m = json.load(open(glob.glob(sys.argv[1] + "/*/manifest.json")[0]))
t = m["timings_ms"]
print("    stages (s): " + ", ".join(f"{k} {v/1000:.1f}" for k, v in sorted(t.items())))
EOF
}

echo "warehouse: $wh ($(du -sh "$wh" | cut -f1))"
for round in $(seq "$rounds"); do
  echo "round $round"
  if [ "${ONLY:-aging}" = aging ]; then
    time_it "aging, local" "$arq" -w "$wh" sql "$aging"
    for n in 1 2; do
      start "$n"
      time_it "aging, $n executor(s)" "$arq" -w "$wh" sql --cluster "$url" "$aging"
      stop
    done
  fi
  if [ "${ONLY:-nightly}" = nightly ]; then
    nightly "nightly, local"
    for n in 1 2; do
      start "$n"
      nightly "nightly, $n executor(s)" --cluster "$url"
      stop
    done
  fi
done
[ "${ONLY:-aging}" = aging ] || exit 0

echo "aging on 2 executors, per stage (shuffle writer rows; bytes of its input):"
start 2
"$arq" -w "$wh" sql --cluster "$url" --format csv "EXPLAIN ANALYZE $aging" >"$work/analyze"
stop
python3 - "$work/analyze" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
for stage in re.split(r"=+(?=\w+Stage\[)", text)[1:]:
    head = re.match(r"\w+Stage\[[^\]]*\]", stage).group(0)
    lines = stage.splitlines()
    writer = next((l for l in lines if "ShuffleWriterExec" in l), "")
    rows = re.search(r"output_rows=([\d.]+ ?[KM]?)", writer)
    child = lines[2] if len(lines) > 2 else ""
    size = re.search(r"output_bytes=([\d.]+ [KMG]?B)", child)
    print(f"  {head}: shuffled {rows.group(1) if rows else '?'} rows, "
          f"{size.group(1) if size else '?'}")
EOF
