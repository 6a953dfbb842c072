#!/usr/bin/env bash
# The object store's overhead: the analyst's aging report and the nightly job over a
# warehouse of N customers, from a local S3 server (moto, installed into target/s3-venv
# on first use) against the same files in a local folder, alternating, on one machine —
# so the difference is the protocol (requests, range reads, listing), not the network.
# Also counts the requests of one run of each from the server's log.
#
#   cargo build --release
#   ARQ_BIN=target/release/arq bash benches/s3.sh [CUSTOMERS=100000] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
customers=${1:-100000}
rounds=${2:-3}
arq=${ARQ_BIN:-target/release/arq}
venv=target/s3-venv
if ! "$venv/bin/python" -c "import moto.server, boto3, flask" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'moto[server,s3]==5.*' boto3
fi
wh=target/bench-data/wh-$customers
if [ ! -d "$wh" ]; then
  "$arq" generate --customers "$customers" --months 12 --seed 1 --quiet --out "$wh"
fi

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp /tmp/arq-s3-bench.XXXXXX)
"$venv/bin/python" -m moto.server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto=$!
work=$(mktemp -d /tmp/arq-s3-bench-out.XXXXXX)
trap 'kill $moto 2>/dev/null; rm -rf "$work" "$log"' EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ALLOW_HTTP=true
for _ in $(seq 100); do
  curl -s -o /dev/null "$AWS_ENDPOINT_URL" && break
  sleep 0.2
done
s3py="$venv/bin/python tests/fixtures/s3.py"
$s3py create arq-bench
$s3py upload "$wh" arq-bench wh
echo "warehouse: $wh ($(du -sh "$wh" | cut -f1)), uploaded to s3://arq-bench/wh"

aging="SELECT c.segment, aging_bucket(o.due_date, o.snapshot_date) AS bucket, o.currency,
       count(*) AS items, sum(o.open_amount) AS open
FROM open_items o JOIN customers_latest c USING (customer_id)
WHERE o.snapshot_date = (SELECT max(snapshot_date) FROM open_items)
GROUP BY 1, 2, 3 ORDER BY 1, 3, aging_bucket_rank(bucket)"

# Seconds of one command (its output discarded).
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

# The requests the server logged while a command ran: LIST, GET, HEAD, PUT/POST.
requests() {
  local before after
  before=$(wc -l <"$log")
  "$@" >/dev/null
  after=$(wc -l <"$log")
  tail -n +"$((before + 1))" "$log" | head -n "$((after - before))" | awk '
    /GET \/[^ ]*list-type=2/ { list++; next }
    /GET \// { get++; next }
    /HEAD \// { head++; next }
    /(PUT|POST|DELETE) \// { put++; next }
    END { printf "%d LIST, %d GET, %d HEAD, %d PUT/POST/DELETE\n", list, get, head, put }'
}

local_aging() { "$arq" -w "$wh" sql -c "$aging" --format csv; }
s3_aging() { "$arq" -w s3://arq-bench/wh sql -c "$aging" --format csv; }
local_nightly() { "$arq" -w "$wh" nightly --quiet --out "$work/local"; }
s3_nightly() { "$arq" -w s3://arq-bench/wh nightly --quiet --out "$work/s3-read"; }
s3_both() { "$arq" -w s3://arq-bench/wh nightly --quiet --out s3://arq-bench/out; }

cmp <(local_aging) <(s3_aging) && echo "aging: same result from the folder and the bucket"
echo "requests, aging report:     $(requests s3_aging)"
echo "requests, nightly (read):   $(requests s3_nightly)"
echo "requests, nightly (both):   $(requests s3_both)"

echo "round  aging-local  aging-s3  nightly-local  nightly-s3-read  nightly-s3-both"
for round in $(seq "$rounds"); do
  a=$(seconds local_aging)
  b=$(seconds s3_aging)
  c=$(seconds local_nightly)
  d=$(seconds s3_nightly)
  e=$(seconds s3_both)
  printf "%5d  %11.2f  %8.2f  %13.1f  %15.1f  %15.1f\n" "$round" "$a" "$b" "$c" "$d" "$e"
done
